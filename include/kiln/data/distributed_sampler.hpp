// kiln/data/distributed_sampler.hpp — each process's share of a data set in a data-parallel fit,
// with PyTorch's torch.utils.data.DistributedSampler's semantics, index for index
// (tests/data/distributed_sampler.cpp checks them against it).
//
// For N samples over W processes, in epoch e:
//   - the order is 0 .. N-1, or with shuffling torch.randperm(N) drawn from a generator seeded
//     with seed + e (the same in every process);
//   - shard_tail::pad (PyTorch's default): the order is extended by its own first samples
//     (repeated as often as needed) to ceil(N / W)·W, so that every process has ceil(N / W);
//     shard_tail::drop (PyTorch's drop_last=True): cut to floor(N / W)·W;
//     shard_tail::uneven (for evaluation, as Lightning's UnrepeatedDistributedSampler): neither,
//     the first N mod W processes have one sample more, and no sample is seen twice;
//   - process r takes positions r, r + W, r + 2W, ...
//
// With pad or drop every process has the same number of batches, so that none waits for a
// collective that the others never start. The trainer shards kiln::data::tensor_batches itself
// (training data padded, validation data uneven); for a LibTorch dataset, the sampler is a
// torch::data::samplers::Sampler:
//
//   kiln::data::distributed_sampler sampler{dataset.size().value(), t.state().world_size, t.state().rank,
//                                           {.shuffle = true, .seed = 7}};
//   auto loader = torch::data::make_data_loader(dataset, sampler, 64);   // sampler.set_epoch(e) each epoch
#pragma once

#include <kiln/detail/check.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/data/samplers/base.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::data {

/// What happens to the samples that do not divide evenly among the processes.
enum class shard_tail {
  pad,    ///< repeat samples from the start so that every process has as many (training)
  drop,   ///< leave them out
  uneven  ///< keep them, one each on the first processes (evaluation: no sample counts twice)
};

struct shard_options {
  bool shuffle = true;
  std::uint64_t seed = 0;
  shard_tail tail = shard_tail::pad;
};

/// Samples per process: process `rank`'s share of `samples` over `world_size` processes.
[[nodiscard]] inline std::int64_t shard_size(std::int64_t samples, std::int64_t world_size, std::int64_t rank,
                                             shard_tail tail) {
  switch (tail) {
    case shard_tail::pad: return (samples + world_size - 1) / world_size;
    case shard_tail::drop: return samples / world_size;
    case shard_tail::uneven: return samples / world_size + (rank < samples % world_size ? 1 : 0);
  }
  return 0;
}

/// The indices process `rank` reads in `epoch`, as int64 [shard_size(...)] on the CPU.
[[nodiscard]] inline torch::Tensor shard_indices(std::int64_t samples, std::int64_t world_size, std::int64_t rank,
                                                 std::int64_t epoch, const shard_options& options) {
  detail::check_option(world_size >= 1, "kiln::data::shard_indices", "world_size", "at least 1", world_size);
  detail::check_option(rank >= 0 && rank < world_size, "kiln::data::shard_indices", "rank",
                       "from 0 to world_size - 1", rank);
  detail::check_option(samples >= 0, "kiln::data::shard_indices", "samples", "at least 0", samples);
  torch::Tensor order;
  if (options.shuffle) {
    auto generator = at::detail::createCPUGenerator(options.seed + static_cast<std::uint64_t>(epoch));
    order = torch::randperm(samples, generator, torch::TensorOptions().dtype(torch::kLong));
  } else {
    order = torch::arange(samples, torch::kLong);
  }
  if (options.tail == shard_tail::pad && samples > 0) {
    const std::int64_t total = shard_size(samples, world_size, 0, shard_tail::pad) * world_size;
    if (total > samples) {
      const std::int64_t copies = (total + samples - 1) / samples;
      order = order.repeat({copies}).narrow(0, 0, total);
    }
  } else if (options.tail == shard_tail::drop) {
    order = order.narrow(0, 0, shard_size(samples, world_size, 0, shard_tail::drop) * world_size);
  }
  if (order.size(0) <= rank) return torch::empty({0}, torch::kLong);
  return order.slice(0, rank, order.size(0), world_size).contiguous();
}

/// A torch::data sampler over process `rank`'s share of a data set of `samples`, for
/// torch::data::make_data_loader. Call set_epoch(e) before each epoch: the shuffle draws from
/// seed + e.
class distributed_sampler final : public torch::data::samplers::Sampler<> {
 public:
  distributed_sampler(std::int64_t samples, std::int64_t world_size, std::int64_t rank, shard_options options = {})
      : samples_(samples), world_size_(world_size), rank_(rank), options_(options) {
    reset(torch::nullopt);
  }

  void set_epoch(std::int64_t epoch) noexcept { epoch_ = epoch; }
  /// Samples this process reads per epoch.
  [[nodiscard]] std::int64_t size() const noexcept { return shard_size(samples_, world_size_, rank_, options_.tail); }

  void reset(torch::optional<std::size_t> new_size) override {
    if (new_size) samples_ = static_cast<std::int64_t>(*new_size);
    indices_ = shard_indices(samples_, world_size_, rank_, epoch_, options_);
    next_ = 0;
  }
  torch::optional<std::vector<std::size_t>> next(std::size_t batch_size) override {
    const auto count = std::min<std::int64_t>(static_cast<std::int64_t>(batch_size), indices_.size(0) - next_);
    if (count <= 0) return torch::nullopt;
    std::vector<std::size_t> batch(static_cast<std::size_t>(count));
    const auto* index = indices_.data_ptr<std::int64_t>() + next_;
    for (std::int64_t i = 0; i < count; ++i) batch[static_cast<std::size_t>(i)] = static_cast<std::size_t>(index[i]);
    next_ += count;
    return batch;
  }
  void save(torch::serialize::OutputArchive& archive) const override {
    archive.write("epoch", torch::tensor(epoch_, torch::kLong), /*is_buffer=*/true);
    archive.write("next", torch::tensor(next_, torch::kLong), /*is_buffer=*/true);
  }
  void load(torch::serialize::InputArchive& archive) override {
    torch::Tensor epoch, next;
    archive.read("epoch", epoch, /*is_buffer=*/true);
    archive.read("next", next, /*is_buffer=*/true);
    epoch_ = epoch.item<std::int64_t>();
    reset(torch::nullopt);
    next_ = next.item<std::int64_t>();
  }

 private:
  std::int64_t samples_, world_size_, rank_;
  shard_options options_;
  std::int64_t epoch_ = 0;
  torch::Tensor indices_;
  std::int64_t next_ = 0;
};

}  // namespace kiln::data
