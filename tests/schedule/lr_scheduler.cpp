// kiln::lr_scheduler (state, save and load) and the schedulers inside a trainer: when they
// advance, what they are told, and the errors that stop a misconfigured fit before it starts.
#include <sstream>
#include <string>
#include <vector>

#include "../support.hpp"

namespace {

using kiln::test::Mlp;

// Composition rules the compiler checks.
static_assert(kiln::SchedulerPolicy<kiln::constant_lr> && kiln::SimpleSchedule<kiln::cosine_annealing>);
static_assert(kiln::SchedulerPolicy<kiln::one_cycle> && kiln::StatefulSchedule<kiln::one_cycle>);
static_assert(kiln::MetricSchedule<kiln::reduce_on_plateau<>> && !kiln::StatefulSchedule<kiln::reduce_on_plateau<>>);
static_assert(kiln::MetricSchedule<kiln::warmup<kiln::reduce_on_plateau<"val/loss">>>);
static_assert(kiln::StatefulSchedule<kiln::warmup<kiln::step_lr>> &&
              !kiln::MetricSchedule<kiln::warmup<kiln::step_lr>>);
static_assert(kiln::reduce_on_plateau<"val/accuracy">::fixed_monitor == "val/accuracy");
static_assert(kiln::reduce_on_plateau<>::fixed_monitor.empty());
static_assert(kiln::detail::computes_metric<kiln::metrics<kiln::accuracy>>("val/accuracy"));
static_assert(kiln::detail::computes_metric<kiln::metrics<>>("val/loss") &&
              kiln::detail::computes_metric<kiln::metrics<>>("train/loss"));
static_assert(!kiln::detail::computes_metric<kiln::metrics<>>("val/accuracy") &&
              !kiln::detail::computes_metric<kiln::metrics<kiln::accuracy>>("train/accuracy"));
static_assert(kiln::detail::interval_of(kiln::reduce_on_plateau{}) == kiln::interval::epoch);
static_assert(!kiln::detail::has_momentum<torch::optim::AdagradOptions> &&
              kiln::detail::has_momentum<torch::optim::AdamWOptions>);

struct sequence {
  std::vector<double> lr, momentum;
  bool operator==(const sequence&) const = default;
};

template <class Scheduler>
void record(const Scheduler& s, sequence& out) {
  out.lr.insert(out.lr.end(), s.learning_rates().begin(), s.learning_rates().end());
  out.momentum.insert(out.momentum.end(), s.momenta().begin(), s.momenta().end());
}

// An SGD (or Adam) with two parameter groups at lr and lr / 10.
template <class Optimizer, class Options>
Optimizer two_groups(double lr) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{torch::zeros({1})}, std::make_unique<Options>(lr / 10));
  groups.emplace_back(std::vector<torch::Tensor>{torch::zeros({1})}, std::make_unique<Options>(lr));
  return Optimizer(std::move(groups), Options(lr));
}

template <class S, class Optimizer = torch::optim::SGD, class Options = torch::optim::SGDOptions>
void check_resume(const S& policy, std::int64_t total, std::int64_t cut) {
  const std::vector<double> metrics{3,   2,   2,   2.5, 2,   1,   1,   1,   1,   1.5,
                                    0.5, 0.5, 0.5, 0.6, 0.7, 0.4, 0.4, 0.4, 0.4, 0.4};
  auto step = [&](auto& s, std::int64_t t) {
    if constexpr (std::remove_cvref_t<decltype(s)>::monitors_metric) {
      s.advance(metrics[static_cast<std::size_t>(t) % metrics.size()]);
    } else {
      s.advance();
    }
  };
  // The whole sequence, uninterrupted.
  auto whole_optimizer = two_groups<Optimizer, Options>(0.5);
  kiln::lr_scheduler<S, Options> whole{policy, whole_optimizer};
  whole.start(total);
  sequence expected;
  for (std::int64_t t = 0; t < total; ++t) {
    step(whole, t);
    if (t >= cut) record(whole, expected);
  }
  // Interrupted at `cut`, then continued by a scheduler on a new optimizer built with other
  // rates: once from state(), once through a torch::serialize archive.
  auto first_optimizer = two_groups<Optimizer, Options>(0.5);
  kiln::lr_scheduler<S, Options> first{policy, first_optimizer};
  first.start(total);
  for (std::int64_t t = 0; t < cut; ++t) step(first, t);
  torch::serialize::OutputArchive archive;
  first.save(archive);
  std::stringstream bytes;
  archive.save_to(bytes);

  for (bool through_archive : {false, true}) {
    CAPTURE(through_archive);
    auto optimizer = two_groups<Optimizer, Options>(7.0);
    kiln::lr_scheduler<S, Options> resumed{policy, optimizer};
    if (through_archive) {
      torch::serialize::InputArchive in;
      bytes.seekg(0);
      in.load_from(bytes);
      resumed.load(in);
    } else {
      resumed.load_state(first.state());
    }
    CHECK(resumed.state() == first.state());
    CHECK(static_cast<Options&>(optimizer.param_groups()[1].options()).lr() == first.learning_rates()[1]);
    sequence continued;
    for (std::int64_t t = cut; t < total; ++t) {
      step(resumed, t);
      record(resumed, continued);
    }
    CHECK(continued == expected);  // bit for bit
  }
}

}  // namespace

TEST_CASE("a scheduler restored mid-sequence continues the identical sequence") {
  SUBCASE("warmup then cosine") {
    check_resume(kiln::warmup<kiln::cosine_annealing>{.length = 3, .start_factor = 0.1, .then = {.t_max = 8}}, 20, 2);
    check_resume(kiln::warmup<kiln::cosine_annealing>{.length = 3, .start_factor = 0.1, .then = {.t_max = 8}}, 20, 9);
  }
  SUBCASE("warm restarts") {
    check_resume(kiln::cosine_warm_restarts{.t_0 = 2, .t_mult = 2, .eta_min = 1e-3}, 20, 5);
  }
  SUBCASE("multi-step") { check_resume(kiln::multi_step_lr{.milestones = {2, 6, 6, 11}}, 15, 6); }
  SUBCASE("reduce on plateau, inside cooldown") {
    check_resume(kiln::reduce_on_plateau{.factor = 0.5, .patience = 1, .cooldown = 2}, 20, 6);
    check_resume(kiln::warmup<kiln::reduce_on_plateau<>>{.length = 2, .then = {.patience = 0}}, 20, 7);
  }
  SUBCASE("one-cycle with Adam's beta1") {
    check_resume<kiln::one_cycle, torch::optim::Adam, torch::optim::AdamOptions>(
        kiln::one_cycle{.total_steps = 20, .three_phase = true}, 20, 11);
  }
}

TEST_CASE("load_state refuses a state for another number of parameter groups") {
  auto optimizer = two_groups<torch::optim::SGD, torch::optim::SGDOptions>(0.1);
  kiln::lr_scheduler<kiln::step_lr, torch::optim::SGDOptions> s{{}, optimizer};
  auto state = s.state();
  state.lr.push_back(1.0);
  CHECK_THROWS_WITH(
      ([&] { s.load_state(state); })(),
      "kiln::lr_scheduler::load_state: the state is for 3 parameter groups (2 momenta), the optimizer has 2 (2)");
  CHECK_THROWS_WITH(([&] { s.advance(); })(), doctest::Contains("kiln::lr_scheduler::advance: call start() first"));
}

TEST_CASE("scheduler options are checked where they enter") {
  auto data = kiln::test::make_toy(32);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  CHECK_THROWS_WITH(([] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::cosine_annealing{.t_max = 0}};
                    })(),
                    "kiln::cosine_annealing: t_max must be at least 1, got 0");
  CHECK_THROWS_WITH(([] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::multi_step_lr{.milestones = {3, 0}}};
                    })(),
                    "kiln::multi_step_lr: each milestone must be at least 1, got 0");
  CHECK_THROWS_WITH(([] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::warmup<kiln::step_lr>{.length = 0}};
                    })(),
                    "kiln::warmup: length must be at least 1, got 0");
  CHECK_THROWS_WITH(([] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::reduce_on_plateau{.factor = 1.0}};
                    })(),
                    "kiln::reduce_on_plateau: factor must be in [0, 1), got 1");
  CHECK_THROWS_WITH(
      ([] {
        kiln::trainer t{kiln::backbone<Mlp>{}, kiln::reduce_on_plateau<"val/loss">{.monitor = "train/loss"}};
      })(),
      "kiln::reduce_on_plateau: monitor must be \"val/loss\", the metric its template argument names "
      "(leave .monitor out, or drop the template argument), got \"train/loss\"");
  CHECK_THROWS_WITH(([&] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::head{torch::nn::Linear(3, 2)},
                                      kiln::reduce_on_plateau{.monitor = "train/loss", .min_lr = {0, 0, 0}}};
                      auto two_class = kiln::data::tensor_batches{data.x, data.y.remainder(2), {.batch_size = 16}};
                      t.fit(two_class);
                    })(),
                    "kiln::reduce_on_plateau: min_lr must be one value or one per parameter group (2), got 3 values");
  CHECK_THROWS_WITH(([&] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::adagrad{}, kiln::one_cycle{.total_steps = 10}};
                      t.fit(batches);
                    })(),
                    doctest::Contains("kiln::one_cycle: cycle_momentum needs an optimizer with momentum or betas"));
  CHECK_THROWS_WITH(
      ([&] {
        kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sgd{}, kiln::one_cycle{.total_steps = 10, .pct_start = 0.1}};
        t.fit(batches);
      })(),
      doctest::Contains("kiln::one_cycle: phase 1 of the cycle is empty"));
}

TEST_CASE("reduce_on_plateau monitoring a metric the fit never computes stops before the first epoch") {
  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  kiln::data::tensor_batches val{data.x, data.y, {.batch_size = 32}};
  {
    kiln::trainer t{kiln::backbone<Mlp>{}, kiln::metrics<kiln::accuracy>{},
                    kiln::reduce_on_plateau{.monitor = "val/f1"}};
    CHECK_THROWS_WITH(
        ([&] { t.fit(train, val); })(),
        "kiln::reduce_on_plateau: monitors \"val/f1\", which this fit never computes; it computes train/loss, "
        "val/loss, val/accuracy");
    CHECK(t.state().step == 0);
  }
  {
    kiln::trainer t{kiln::backbone<Mlp>{}, kiln::reduce_on_plateau{}};  // "val/loss" by default
    CHECK_THROWS_WITH(
        ([&] { t.fit(train); })(),
        "kiln::reduce_on_plateau: monitors \"val/loss\", which this fit never computes; it computes train/loss "
        "(fit(train) has no validation data)");
    CHECK(t.state().step == 0);
  }
}

TEST_CASE("reduce_on_plateau in a trainer advances once per epoch with the monitored metric") {
  auto data = kiln::test::make_toy(96, 2);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 32}};
  kiln::data::tensor_batches val{data.x.narrow(0, 0, 48), data.y.narrow(0, 0, 48), {.batch_size = 48}};
  std::vector<double> seen;
  struct record_lr {
    std::vector<double>* seen;
    void on_epoch_end(kiln::context& ctx) { seen->push_back(ctx.learning_rates[1]); }
  };
  const kiln::reduce_on_plateau<"val/accuracy"> policy{.mode = kiln::monitor_mode::max, .factor = 0.5, .patience = 0};
  torch::manual_seed(3);
  kiln::trainer t{kiln::backbone<Mlp>{.lr_ratio = 0.1},
                  kiln::head{torch::nn::Linear(3, 3)},
                  kiln::sgd{.lr = 0.2},
                  kiln::metrics<kiln::accuracy>{},
                  policy,
                  kiln::callbacks{record_lr{&seen}}};
  const auto history = t.fit(train, val, {.epochs = 6});

  // The same policy fed the epochs' accuracies by hand.
  auto optimizer = two_groups<torch::optim::SGD, torch::optim::SGDOptions>(0.2);
  kiln::lr_scheduler<std::remove_const_t<decltype(policy)>, torch::optim::SGDOptions> by_hand{policy, optimizer};
  by_hand.start();
  std::vector<double> expected;
  for (const auto& epoch : history) {
    by_hand.advance(epoch.at("val/accuracy"));
    expected.push_back(by_hand.learning_rates()[1]);
  }
  CHECK(seen == expected);
  CHECK(t.scheduler().advances() == 6);
  CHECK(t.scheduler().learning_rates()[0] == doctest::Approx(t.scheduler().learning_rates()[1] * 0.1));
}

TEST_CASE("one_cycle counts the fit's optimizer steps, cycles SGD's momentum, and stops at its end") {
  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};  // 4 batches
  struct record_step {
    std::vector<double>* lr;
    std::vector<double>* momentum;
    void on_before_optimizer_step(kiln::context& ctx) {
      lr->push_back(ctx.learning_rates[0]);
      momentum->push_back(
          static_cast<torch::optim::SGDOptions&>(ctx.optimizer.param_groups()[0].options()).momentum());
    }
  };
  std::vector<double> lr, momentum;
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 0.1, .momentum = 0.9}, kiln::accumulate<3>{},
                  kiln::one_cycle{}, kiln::callbacks{record_step{&lr, &momentum}}};
  t.fit(batches, {.epochs = 3});  // two optimizer steps per epoch: 3 batches, then the last one
  CHECK(t.scheduler().state().own.total_steps == 6);
  CHECK(t.scheduler().advances() == 6);
  REQUIRE(lr.size() == 6);
  CHECK(lr.front() == doctest::Approx(0.1 / 25));  // the first step at peak / div_factor
  CHECK(momentum.front() == doctest::Approx(0.95));
  CHECK(lr.back() == doctest::Approx(0.1 / 25 / 1e4));  // the last at the minimum
  CHECK(momentum.back() == doctest::Approx(0.95));
  CHECK(*std::max_element(lr.begin(), lr.end()) > 0.05);
  CHECK(*std::min_element(momentum.begin(), momentum.end()) < 0.9);
  CHECK_THROWS_WITH(([&] { t.fit(batches); })(),
                    "kiln::one_cycle: advanced 7 times, but the cycle has 6 steps; raise .total_steps");

  struct rows : torch::data::datasets::Dataset<rows> {
    torch::Tensor x, y;
    rows(torch::Tensor x_, torch::Tensor y_) : x(std::move(x_)), y(std::move(y_)) {}
    torch::data::Example<> get(size_t i) override {
      return {x[static_cast<std::int64_t>(i)], y[static_cast<std::int64_t>(i)]};
    }
    torch::optional<size_t> size() const override { return static_cast<size_t>(x.size(0)); }
  };
  auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
      rows{data.x, data.y}.map(torch::data::transforms::Stack<>()), torch::data::DataLoaderOptions(16));
  kiln::trainer unsized{kiln::backbone<Mlp>{}, kiln::sgd{}, kiln::one_cycle{}};
  CHECK_THROWS_WITH(([&] { unsized.fit(*loader); })(), doctest::Contains("kiln::one_cycle: set .total_steps"));
  kiln::trainer too_short{kiln::backbone<Mlp>{}, kiln::sgd{}, kiln::one_cycle{.total_steps = 5}};
  CHECK_THROWS_WITH(([&] { too_short.fit(batches, {.epochs = 2}); })(),
                    "kiln::one_cycle: total_steps must be at least the 8 advances this fit makes, got 5");
}

TEST_CASE("a warmup per optimizer step in a trainer, resumed in a new trainer from the saved scheduler") {
  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  struct record_lr {
    std::vector<double>* seen;
    void on_before_optimizer_step(kiln::context& ctx) { seen->push_back(ctx.learning_rates[0]); }
  };
  const kiln::warmup<kiln::cosine_annealing> policy{
      .length = 3, .start_factor = 0.2, .then = {.t_max = 9, .eta_min = 1e-3, .interval = kiln::interval::step}};
  std::vector<double> whole, before, after;
  kiln::trainer a{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 0.3}, policy, kiln::callbacks{record_lr{&whole}}};
  a.fit(batches, {.epochs = 4});

  // The same sequence, driven by hand.
  auto optimizer = two_groups<torch::optim::SGD, torch::optim::SGDOptions>(0.3);
  kiln::lr_scheduler<std::remove_const_t<decltype(policy)>, torch::optim::SGDOptions> by_hand{policy, optimizer};
  by_hand.start();
  std::vector<double> expected;
  for (int i = 0; i < 16; ++i) {
    expected.push_back(by_hand.learning_rates()[1]);
    by_hand.advance();
  }
  CHECK(whole == expected);
  CHECK(whole[0] == doctest::Approx(0.3 * 0.2));

  kiln::trainer b{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 0.3}, policy, kiln::callbacks{record_lr{&before}}};
  b.fit(batches, {.epochs = 2});
  torch::serialize::OutputArchive archive;
  b.scheduler().save(archive);
  std::stringstream bytes;
  archive.save_to(bytes);

  kiln::trainer c{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 0.3}, policy, kiln::callbacks{record_lr{&after}}};
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  c.scheduler().load(in);
  c.fit(batches, {.epochs = 2});
  before.insert(before.end(), after.begin(), after.end());
  CHECK(before == whole);
}
