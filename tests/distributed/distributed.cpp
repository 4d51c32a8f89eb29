// The distributed role's seams in the loop (kiln/distributed/distributed.hpp): a policy of that
// role is called at the points the file comment names, in order, and what it does there reaches
// the numbers the fit reports; in a process other than rank 0 nothing is written. The policy
// here plays a process among others in one process: it records each call and stands in for the
// other processes' contributions with known numbers.
#include "../support.hpp"

#include <kiln/callbacks/csv_logger.hpp>
#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/distributed/data_parallel.hpp>
#include <kiln/distributed/distributed.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

using calls = std::vector<std::string>;

/// A sample count kept as a public tensor, so that a reduction can change it.
struct sample_count {
  static constexpr std::string_view name = "samples";
  torch::Tensor count;
  void reset(const torch::Device& device) { count = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kLong)); }
  void update(const torch::Tensor& output, const torch::Tensor&) { count.add_(output.size(0)); }
  [[nodiscard]] double compute() const { return static_cast<double>(count.item<std::int64_t>()); }
};

/// One process of `world_size`. The other processes' contributions are made up: in
/// reduce_gradients they are zero gradients (so the mean is half when there are two); in
/// reduce_sums, `other_loss` per sample over as many samples; in reduce_metrics, as many samples.
struct stand_in {
  using kiln_role = kiln::role::distributed;
  std::int64_t rank = 0;
  std::int64_t world_size = 2;
  double other_loss = 0;
  calls* log = nullptr;

  struct state_type {
    std::int64_t rank_, world_size_;
    double other_loss;
    calls* log;
    explicit state_type(const stand_in& p)
        : rank_(p.rank), world_size_(p.world_size), other_loss(p.other_loss), log(p.log) {}
    [[nodiscard]] std::int64_t rank() const { return rank_; }
    [[nodiscard]] std::int64_t world_size() const { return world_size_; }
    void begin_fit(torch::nn::Module&) { record("begin_fit"); }
    void before_backward(bool steps) { record(steps ? "backward, steps" : "backward"); }
    void reduce_gradients(torch::nn::Module& model) {
      record("reduce_gradients");
      torch::NoGradGuard no_grad;
      for (auto& p : model.parameters()) {
        if (p.grad().defined()) p.mutable_grad().mul_(1.0 / static_cast<double>(world_size_));
      }
    }
    void reduce_sums(torch::Tensor& loss_sum, std::int64_t& samples) {
      record("reduce_sums");
      loss_sum.add_(other_loss * static_cast<double>(samples));
      samples *= 2;
    }
    template <class Metrics>
    void reduce_metrics(Metrics& metrics) {
      record("reduce_metrics");
      if constexpr (std::is_same_v<Metrics, kiln::metrics<sample_count>>) std::get<0>(metrics.items).count.mul_(2);
    }
    void record(std::string call) const {
      if (log != nullptr) log->push_back(std::move(call));
    }
  };
};
static_assert(kiln::DistributedPolicy<stand_in>);
static_assert(kiln::DistributedPolicy<kiln::single_process>);
static_assert(!kiln::DistributedPolicy<kiln::sgd>);

/// Records the hooks among the policy's calls.
struct hook_log {
  calls* log;
  void on_fit_begin(kiln::context&) { log->push_back("on_fit_begin"); }
  void on_before_optimizer_step(kiln::context&) { log->push_back("on_before_optimizer_step"); }
  void on_batch_end(kiln::context&) { log->push_back("on_batch_end"); }
  void on_validation_end(kiln::context&) { log->push_back("on_validation_end"); }
  void on_epoch_end(kiln::context&) { log->push_back("on_epoch_end"); }
};

// The data of this process: marked as its share already (a share of one), so that the trainer,
// which shards unsharded tensor_batches among the world's processes, leaves it whole.
struct data {
  kiln::test::toy_data train = kiln::test::make_toy(56, 1), val = kiln::test::make_toy(24, 2);
  kiln::data::tensor_batches train_batches{train.x, train.y, {.batch_size = 8}};  // 7 batches
  kiln::data::tensor_batches val_batches{val.x, val.y, {.batch_size = 8}};
  data() {
    train_batches.shard(0, 1, kiln::data::shard_tail::pad);
    val_batches.shard(0, 1, kiln::data::shard_tail::uneven);
  }
};

fs::path fresh_dir(const std::string& name) { return kiln::test::fresh_dir("distributed", name); }

}  // namespace

TEST_CASE("the distributed role is called where gradients are complete and where a pass's sums are final") {
  data d;
  calls log;
  torch::manual_seed(1);
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.1}, kiln::accumulate<3>{},
                  stand_in{.log = &log}, kiln::callbacks{hook_log{&log}}};
  t.fit(d.train_batches, d.val_batches, {.epochs = 1});

  calls expected{"begin_fit", "on_fit_begin"};
  for (int batch = 0; batch < 7; ++batch) {
    const bool steps = batch % 3 == 2;  // accumulate<3>: batches 2 and 5 end a window
    expected.emplace_back(steps ? "backward, steps" : "backward");
    if (steps) {
      expected.emplace_back("reduce_gradients");
      expected.emplace_back("on_before_optimizer_step");
    }
    expected.emplace_back("on_batch_end");
  }
  // The epoch's last window, one batch long, steps after the loop.
  for (const char* call : {"reduce_gradients", "on_before_optimizer_step", "reduce_sums",  // training pass
                           "reduce_sums", "reduce_metrics", "on_validation_end", "on_epoch_end"}) {
    expected.emplace_back(call);
  }
  CHECK(log == expected);
  CHECK(t.state().step == 3);
  CHECK(t.state().rank == 0);
  CHECK(t.state().world_size == 2);
}

TEST_CASE("what the distributed role does at its points reaches the step and the reported values") {
  data d;
  constexpr double other_loss = 4.0;
  torch::manual_seed(1);
  kiln::trainer alone{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.05}, kiln::metrics<sample_count>{}};
  const auto expected = alone.fit(d.train_batches, d.val_batches, {.epochs = 2});
  torch::manual_seed(1);
  kiln::trainer halved{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.1}, kiln::metrics<sample_count>{},
                       stand_in{.other_loss = other_loss}};
  const auto history = halved.fit(d.train_batches, d.val_batches, {.epochs = 2});

  // Gradients halved before the step at twice the rate: the same weights, bit for bit.
  CHECK(kiln::test::same_state(alone.model(), halved.model()));
  for (std::size_t e = 0; e < 2; ++e) {
    CAPTURE(e);
    CHECK(history[e].at("train/loss") == doctest::Approx((expected[e].at("train/loss") + other_loss) / 2).epsilon(1e-12));
    CHECK(history[e].at("val/loss") == doctest::Approx((expected[e].at("val/loss") + other_loss) / 2).epsilon(1e-12));
    CHECK(expected[e].at("val/samples") == 24);
    CHECK(history[e].at("val/samples") == 48);
  }
}

TEST_CASE("a process other than rank 0 writes no file: its loggers and checkpoint callbacks do not run") {
  data d;
  for (const std::int64_t rank : {0, 1}) {
    CAPTURE(rank);
    const auto dir = fresh_dir("rank" + std::to_string(rank));
    torch::manual_seed(1);
    kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.1}, stand_in{.rank = rank},
                    kiln::callbacks{kiln::early_stopping{.monitor = "val/loss", .patience = 1},
                                    kiln::csv_logger{.path = dir / "metrics.csv"},
                                    kiln::model_checkpoint{.directory = dir / "checkpoints"}}};
    const auto history = t.fit(d.train_batches, d.val_batches, {.epochs = 3});
    CHECK(t.state().writes_files() == (rank == 0));
    CHECK(fs::exists(dir / "metrics.csv") == (rank == 0));
    CHECK(fs::exists(dir / "checkpoints") == (rank == 0));
    // early_stopping writes nothing: it runs in every process, so all stop at the same epoch.
    double best = history.front().at("val/loss");
    for (const auto& epoch : history) best = std::min(best, epoch.at("val/loss"));
    CHECK(t.callback_list().get<kiln::early_stopping>().best() == best);
    if (rank == 1) {
      t.state().save_checkpoint(dir / "by_hand.pt");  // rank 0 writes it
      CHECK_FALSE(fs::exists(dir / "by_hand.pt"));
    }
  }
}

TEST_CASE("a trainer offers its metrics, with their options, to whoever scores predictions outside a fit") {
  torch::manual_seed(1);
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{},
                  kiln::metrics{kiln::fbeta<kiln::average::macro>{.beta = 2.0}, kiln::accuracy{}}};
  auto metrics = t.metric_list();  // a copy to score with
  const auto output = torch::tensor({{2.0, 0.0, 0.0}, {0.0, 2.0, 0.0}, {0.0, 0.0, 2.0}, {2.0, 0.0, 0.0}});
  const auto target = torch::tensor({0, 1, 1, 0}, torch::kLong);
  metrics.reset(torch::kCPU);
  metrics.update(output, target);
  kiln::metric_values values;
  metrics.compute("oof/", values);
  // scikit-learn: fbeta_score([0, 1, 1, 0], [0, 1, 2, 0], beta=2, average="macro") = 14/27;
  // with beta = 1, the default, it would be 5/9.
  CHECK(values.at("oof/fbeta_macro") == doctest::Approx(14.0 / 27.0).epsilon(1e-12));
  CHECK(values.at("oof/accuracy") == doctest::Approx(0.75));
}

TEST_CASE("in a world of several processes the trainer shards tensor_batches: training padded, validation not") {
  const auto train = kiln::test::make_toy(57, 1), val = kiln::test::make_toy(25, 2);
  kiln::data::tensor_batches train_batches{train.x, train.y, {.batch_size = 8, .shuffle = true, .seed = 4}};
  kiln::data::tensor_batches val_batches{val.x, val.y, {.batch_size = 8}};
  calls log;
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, stand_in{.rank = 1, .world_size = 2, .log = &log},
                  kiln::callbacks{hook_log{&log}}};
  t.fit(train_batches, val_batches, {.epochs = 1});
  REQUIRE(train_batches.sharded());
  REQUIRE(val_batches.sharded());
  CHECK(train_batches.size() == 4);  // 29 of 57 (padded), in batches of 8
  CHECK(std::count(log.begin(), log.end(), "on_batch_end") == 4);
  std::int64_t seen = 0;
  for (const auto& batch : val_batches) seen += batch.target.size(0);
  CHECK(seen == 12);  // rank 1 of 2: 25 samples, unpadded
  // The same share as the sampler's, for pass 0.
  train_batches.set_epoch(0);
  std::vector<std::int64_t> rows;
  for (const auto& batch : train_batches) {
    for (std::int64_t i = 0; i < batch.target.size(0); ++i) rows.push_back(batch.target[i].item<std::int64_t>());
  }
  const auto expected = kiln::data::shard_indices(57, 2, 1, 0, {.shuffle = true, .seed = 4});
  std::vector<std::int64_t> expected_labels;
  for (std::int64_t i = 0; i < expected.size(0); ++i) expected_labels.push_back(train.y[expected[i].item<std::int64_t>()].item<std::int64_t>());
  CHECK(rows == expected_labels);
}

TEST_CASE("kiln::data_parallel alone is one process; a torchrun environment that is incomplete is refused") {
  const auto data = kiln::test::make_toy(16, 1);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 8}};
  ::unsetenv("RANK");
  kiln::trainer alone{kiln::backbone<kiln::test::Mlp>{}, kiln::data_parallel<kiln::gloo>{}};
  CHECK(alone.state().world_size == 1);
  CHECK(alone.state().rank == 0);
  alone.fit(batches, {.epochs = 1});  // nothing to communicate
  CHECK_FALSE(batches.sharded());

  struct environment {
    std::vector<std::pair<const char*, const char*>> set;
    std::string message;
  };
  const std::vector<environment> cases{
      {{{"RANK", "0"}}, "RANK is set but WORLD_SIZE is not; run the program under torchrun"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "two"}}, "WORLD_SIZE=two is not an integer from 1 to"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK=2 is not an integer from 0 to 1"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}}, "RANK is set but MASTER_ADDR is not"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "0x1"}},
       "MASTER_PORT=0x1 is not an integer from 1 to 65535"}};
  for (const auto& c : cases) {
    CAPTURE(c.message);
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(name);
    for (const auto& [name, value] : c.set) ::setenv(name, value, 1);
    CHECK_THROWS_WITH_AS(kiln::trainer(kiln::backbone<kiln::test::Mlp>{}, kiln::data_parallel<kiln::gloo>{}),
                         doctest::Contains(c.message.c_str()), kiln::distributed_error);
  }
  for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(name);
  CHECK_THROWS_WITH_AS(kiln::data_parallel<kiln::gloo>{.bucket_mb = 0}.validate(),
                       "kiln::data_parallel: bucket_mb must be a finite number > 0, got 0", std::invalid_argument);
}
