// Each process's share of the data against PyTorch's DistributedSampler, index for index, on
// random (N, world size, rank, seed, epoch), shuffled and not, padded and cut
// (tests/reference/torch_distributed_sampler.py, one Python process for every case); the
// uneven shares of evaluation cover every sample once; tensor_batches and the LibTorch sampler
// read those shares.
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/data/distributed_sampler.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

std::vector<std::int64_t> as_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

const char* tail_name(kiln::data::shard_tail tail) {
  switch (tail) {
    case kiln::data::shard_tail::pad: return "pad";
    case kiln::data::shard_tail::drop: return "drop";
    case kiln::data::shard_tail::uneven: return "uneven";
  }
  return "";
}

}  // namespace

TEST_CASE("each process's share is PyTorch DistributedSampler's, index for index") {
  std::mt19937_64 draw(2024);
  json cases = json::array();
  struct one {
    std::int64_t samples, world, rank, epoch;
    kiln::data::shard_options options;
  };
  std::vector<one> mine;
  const kiln::data::shard_tail tails[] = {kiln::data::shard_tail::pad, kiln::data::shard_tail::drop,
                                          kiln::data::shard_tail::uneven};
  for (int i = 0; i < 240; ++i) {
    const auto world = static_cast<std::int64_t>(1 + draw() % 8);
    // Mostly small data sets, some smaller than the world (padding repeats the order more than once).
    auto samples = static_cast<std::int64_t>(i % 5 == 0 ? 1 + draw() % 12 : 1 + draw() % 300);
    if (tails[i % 3] == kiln::data::shard_tail::drop) samples = std::max(samples, world);
    const one c{samples, world, static_cast<std::int64_t>(draw() % static_cast<std::uint64_t>(world)),
                static_cast<std::int64_t>(draw() % 12),
                {.shuffle = i % 4 != 3, .seed = draw() % (1ULL << 40), .tail = tails[i % 3]}};
    mine.push_back(c);
    cases.push_back({{"samples", c.samples}, {"world_size", c.world}, {"rank", c.rank}, {"seed", c.options.seed},
                     {"epoch", c.epoch}, {"shuffle", c.options.shuffle}, {"tail", tail_name(c.options.tail)}});
  }
  const json expected = kiln::test::run_reference("torch_distributed_sampler.py", cases);
  REQUIRE(expected.size() == mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto& c = mine[i];
    CAPTURE(cases[i].dump());
    const auto got = as_vector(kiln::data::shard_indices(c.samples, c.world, c.rank, c.epoch, c.options));
    CHECK(got == expected[i].get<std::vector<std::int64_t>>());
    CHECK(static_cast<std::int64_t>(got.size()) == kiln::data::shard_size(c.samples, c.world, c.rank, c.options.tail));
  }
}

TEST_CASE("uneven shares cover every sample exactly once; padded ones give every process as many") {
  for (const std::int64_t samples : {1, 7, 45, 64}) {
    for (const std::int64_t world : {1, 2, 3, 8}) {
      CAPTURE(samples);
      CAPTURE(world);
      std::vector<std::int64_t> seen;
      for (std::int64_t rank = 0; rank < world; ++rank) {
        const auto share = as_vector(kiln::data::shard_indices(samples, world, rank, 3, {.seed = 5, .tail = kiln::data::shard_tail::uneven}));
        seen.insert(seen.end(), share.begin(), share.end());
        CHECK(kiln::data::shard_size(samples, world, rank, kiln::data::shard_tail::pad) == (samples + world - 1) / world);
      }
      std::sort(seen.begin(), seen.end());
      std::vector<std::int64_t> all(static_cast<std::size_t>(samples));
      for (std::int64_t i = 0; i < samples; ++i) all[static_cast<std::size_t>(i)] = i;
      CHECK(seen == all);
    }
  }
}

TEST_CASE("tensor_batches and the LibTorch sampler read the process's share, epoch by epoch") {
  const auto x = torch::arange(50, torch::kFloat).unsqueeze(1);
  const auto y = torch::arange(50, torch::kLong);
  const kiln::data::shard_options options{.shuffle = true, .seed = 9, .tail = kiln::data::shard_tail::pad};
  kiln::data::tensor_batches batches{x, y, {.batch_size = 4, .shuffle = true, .seed = 9}};
  batches.shard(1, 3, kiln::data::shard_tail::pad);
  CHECK(batches.sharded());
  CHECK(batches.size() == 5);  // 17 samples in batches of 4
  kiln::data::distributed_sampler sampler{50, 3, 1, options};
  CHECK(sampler.size() == 17);
  for (std::int64_t epoch : {0, 1, 4}) {
    CAPTURE(epoch);
    const auto expected = as_vector(kiln::data::shard_indices(50, 3, 1, epoch, options));
    batches.set_epoch(epoch);
    std::vector<std::int64_t> read;
    for (const auto& batch : batches) {
      const auto part = as_vector(batch.target);
      read.insert(read.end(), part.begin(), part.end());
    }
    CHECK(read == expected);
    sampler.set_epoch(epoch);
    sampler.reset(torch::nullopt);
    std::vector<std::int64_t> sampled;
    while (const auto next = sampler.next(4)) sampled.insert(sampled.end(), next->begin(), next->end());
    CHECK(sampled == expected);
  }
  CHECK_THROWS_WITH_AS(batches.shard(3, 3, kiln::data::shard_tail::pad),
                       "kiln::data::tensor_batches::shard: rank must be from 0 to world_size - 1, got 3",
                       std::invalid_argument);
}
