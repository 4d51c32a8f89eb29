// kiln::grad_scaler against the rules of PyTorch's GradScaler (tests/reference/grad_scaler_rules.py),
// alone and inside a whole fit with skipped steps.
#include <cmath>

#include "scaler_support.hpp"

namespace {

using nlohmann::json;
using kiln::test::decode;
using kiln::test::encode;

json options_json(const kiln::grad_scaler_options& o) {
  return {{"init_scale", o.init_scale},
          {"growth_factor", o.growth_factor},
          {"backoff_factor", o.backoff_factor},
          {"growth_interval", o.growth_interval}};
}

// Steps of (already scaled) gradients for three parameters; `poison` puts a value in one
// element of one gradient at the given steps.
json make_steps(int count, double magnitude, const std::vector<std::pair<int, double>>& poison, std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  json steps = json::array();
  for (int s = 0; s < count; ++s) {
    std::vector<torch::Tensor> grads{torch::randn({4, 3}, gen) * magnitude, torch::randn({3}, gen) * magnitude,
                                     torch::randn({}, gen) * magnitude};
    for (const auto& [step, value] : poison) {
      if (step == s) grads[static_cast<std::size_t>(s) % grads.size()].reshape({-1})[0] = value;
    }
    json step = json::array();
    for (const auto& g : grads) step.push_back(encode(g));
    steps.push_back(step);
  }
  return steps;
}

}  // namespace

TEST_CASE("grad_scaler unscales, finds inf/NaN and updates the scale by PyTorch's rules, step for step") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  struct scenario {
    const char* name;
    kiln::grad_scaler_options options;
    json steps;
  };
  const std::vector<scenario> scenarios{
      {"PyTorch's factors: growth after 3 finite steps, backoff at inf, -inf and NaN",
       {.init_scale = 1024.0, .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 3},
       make_steps(14, 1024.0, {{3, inf}, {7, nan}, {8, -inf}}, 1)},
      {"factors that round: products in float64, rounded to float32; the scale falls below 1",
       {.init_scale = 3000.7, .growth_factor = 1.7, .backoff_factor = 0.3, .growth_interval = 2},
       make_steps(16, 10.0, {{1, inf}, {2, inf}, {3, nan}, {4, inf}, {5, inf}, {6, inf}, {7, inf}, {8, nan}}, 2)},
      {"a growth that would overflow float32 leaves the scale as it was",
       {.init_scale = std::ldexp(1.0, 127), .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 1},
       make_steps(4, 1e30, {{2, 3e38}}, 3)},
  };
  json cases = json::array();
  for (const auto& s : scenarios) cases.push_back({{"kind", "sequence"}, {"options", options_json(s.options)}, {"steps", s.steps}});
  const json expected = kiln::test::run_reference("grad_scaler_rules.py", cases);

  for (const auto& device : kiln::test::test_devices()) {
    for (std::size_t c = 0; c < scenarios.size(); ++c) {
      CAPTURE(device);
      CAPTURE(scenarios[c].name);
      kiln::grad_scaler scaler{scenarios[c].options};
      scaler.to(device);
      std::vector<torch::Tensor> params;
      for (const auto& g : scenarios[c].steps[0]) params.push_back(torch::zeros_like(decode(g)).to(device).requires_grad_());
      torch::optim::SGD optimizer(params, torch::optim::SGDOptions(0.1));
      const auto& steps = scenarios[c].steps;
      const auto& want = expected[c].at("steps");
      REQUIRE(want.size() == steps.size());
      int growths = 0, backoffs = 0;
      double previous = scenarios[c].options.init_scale;
      for (std::size_t s = 0; s < steps.size(); ++s) {
        CAPTURE(s);
        for (std::size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = decode(steps[s][i]).to(device);
        scaler.unscale(optimizer);
        CHECK(scaler.found_inf() == want[s].at("found_inf").get<bool>());
        for (std::size_t i = 0; i < params.size(); ++i) {
          CHECK(kiln::test::same_values(params[i].grad(), decode(want[s].at("grads")[i])));
        }
        scaler.update();
        const auto state = scaler.state();
        CHECK(state.scale == want[s].at("scale").get<double>());
        CHECK(state.growth_tracker == want[s].at("tracker").get<std::int64_t>());
        growths += state.scale > previous;
        backoffs += state.scale < previous;
        previous = state.scale;
      }
      if (c < 2) {  // the scenarios do what their names say
        CHECK(growths >= 1);
        CHECK(backoffs >= 3);
      }
    }
  }
  CHECK(expected[1].at("steps").back().at("scale").get<double>() < 1.0);
  CHECK(expected[2].at("steps")[0].at("scale").get<double>() == std::ldexp(1.0, 127));
}

TEST_CASE("grad_scaler state() and load_state() carry the scale and the growth tracker") {
  kiln::grad_scaler a{{.init_scale = 8.0, .growth_interval = 3}};
  auto p = torch::zeros({2}).requires_grad_();
  torch::optim::SGD optimizer({p}, torch::optim::SGDOptions(0.1));
  for (int i = 0; i < 4; ++i) {  // 3 finite steps grow the scale to 16; one more counts 1
    p.mutable_grad() = torch::ones({2});
    a.unscale(optimizer);
    a.update();
  }
  const auto saved = a.state();
  CHECK(saved.scale == 16.0);
  CHECK(saved.growth_tracker == 1);

  kiln::grad_scaler b{{.init_scale = 8.0, .growth_interval = 3}};
  b.load_state(saved);
  for (int i = 0; i < 2; ++i) {  // two more finite steps complete the interval in both
    p.mutable_grad() = torch::ones({2});
    a.unscale(optimizer);
    a.update();
    p.mutable_grad() = torch::ones({2});
    b.unscale(optimizer);
    b.update();
  }
  CHECK(a.state().scale == 32.0);
  CHECK(b.state().scale == 32.0);
  CHECK(b.state().growth_tracker == 0);

  CHECK_THROWS_WITH(b.load_state({.scale = 4.0, .growth_tracker = 3}),
                    "kiln::grad_scaler::load_state: growth_tracker must be in [0, growth_interval), got 3");
  CHECK_THROWS_WITH(kiln::grad_scaler({.growth_factor = 1.0}),
                    "kiln::grad_scaler: growth_factor must be a finite number > 1, got 1");
  CHECK_THROWS_WITH(kiln::grad_scaler({.backoff_factor = 1.5}),
                    "kiln::grad_scaler: backoff_factor must be in (0, 1), got 1.5");
  CHECK_THROWS_WITH(kiln::grad_scaler({.growth_interval = 0}),
                    "kiln::grad_scaler: growth_interval must be at least 1 (and fit in 32 bits), got 0");
}

TEST_CASE("grad_scaler refuses float16 gradients, which it could not unscale exactly") {
  kiln::grad_scaler scaler;
  auto p = torch::zeros({2}, torch::kHalf).requires_grad_();
  torch::optim::SGD optimizer({p}, torch::optim::SGDOptions(0.1));
  p.mutable_grad() = torch::ones({2}, torch::kHalf);
  CHECK_THROWS_WITH(scaler.unscale(optimizer),
                    doctest::Contains("a gradient is float16 and cannot be unscaled exactly"));
}

namespace {

// Loss scaling alone, without autocast: the same trainer path as kiln::mixed_precision<kiln::fp16>,
// where LibTorch 1.13 cannot autocast to float16 (the CPU).
struct scaled_fp32 {
  static constexpr c10::ScalarType dtype = c10::ScalarType::Undefined;
  static constexpr bool scales_loss = true;
};

struct record_scaler {
  kiln::grad_scaler* scaler = nullptr;
  std::vector<double>* scales = nullptr;
  std::vector<std::int64_t>* steps = nullptr;
  std::vector<double>* lrs = nullptr;
  void on_batch_end(kiln::context& ctx) {
    scales->push_back(scaler->state().scale);
    steps->push_back(ctx.step);
    lrs->push_back(ctx.learning_rates[0]);
  }
};

}  // namespace

TEST_CASE("a fit with dynamic loss scaling equals PyTorch's: skipped steps, scale, lr and weights") {
  // A scale near float32's limit makes some scaled gradients overflow on their own (the scale
  // then backs off, grows again, overflows again); two batches carry a NaN input besides. Skipped steps advance neither ctx.step nor the
  // per-step StepLR.
  const std::int64_t batch_size = 16, batches = 10, epochs = 3;
  const std::vector<std::int64_t> poisoned{5, 17};  // over all batches of the run
  kiln::grad_scaler_options options{.init_scale = std::ldexp(1.0, 123), .growth_factor = 2.0,
                                    .backoff_factor = 0.5, .growth_interval = 2};
  auto data = kiln::test::make_toy(batch_size * batches, 11);
  data.x.mul_(300.0);  // large inputs, large first-layer gradients: overflows at scales near 2^122

  torch::manual_seed(5);
  kiln::test::Mlp net(8, 16, 3);
  json weights;
  for (const auto& p : net->named_parameters()) weights[p.key()] = encode(p.value());
  std::vector<std::pair<torch::Tensor, torch::Tensor>> run;
  json batches_json = json::array();
  for (std::int64_t e = 0; e < epochs; ++e) {
    for (std::int64_t b = 0; b < batches; ++b) {
      auto x = data.x.narrow(0, b * batch_size, batch_size).clone();
      auto y = data.y.narrow(0, b * batch_size, batch_size);
      const auto index = e * batches + b;
      if (std::find(poisoned.begin(), poisoned.end(), index) != poisoned.end()) x[3][2] = std::nan("");
      run.emplace_back(x, y);
      const auto labels = y.contiguous();
      batches_json.push_back({{"x", encode(x)},
                              {"y", std::vector<std::int64_t>(labels.data_ptr<std::int64_t>(),
                                                              labels.data_ptr<std::int64_t>() + labels.numel())}});
    }
  }
  const double lr = 0.05, momentum = 0.9, gamma = 0.5;
  const std::int64_t step_size = 4;
  const json expected = kiln::test::run_reference(
      "grad_scaler_rules.py",
      json::array({{{"kind", "train"}, {"sizes", {8, 16, 3}}, {"weights", weights}, {"lr", lr}, {"momentum", momentum},
                    {"step_size", step_size}, {"gamma", gamma}, {"options", options_json(options)},
                    {"batches", batches_json}}}))[0];

  std::vector<double> scales, lrs;
  std::vector<std::int64_t> steps;
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{.module = net},
                  kiln::sgd{.lr = lr, .momentum = momentum},
                  kiln::step_lr{.step_size = step_size, .gamma = gamma, .interval = kiln::interval::step},
                  kiln::mixed_precision<scaled_fp32>{.init_scale = options.init_scale,
                                                     .growth_factor = options.growth_factor,
                                                     .backoff_factor = options.backoff_factor,
                                                     .growth_interval = options.growth_interval},
                  kiln::callbacks{record_scaler{nullptr, &scales, &steps, &lrs}}};
  t.callback_list().get<0>().scaler = &t.precision().scaler();
  // One epoch over all 30 batches: the scale and tracker carry across epochs anyway.
  t.fit(run);

  const auto& want_scale = expected.at("scale");
  const auto& want_skipped = expected.at("skipped");
  REQUIRE(scales.size() == want_scale.size());
  std::int64_t skipped = 0, previous_step = 0;
  bool grew = false;
  for (std::size_t i = 0; i < scales.size(); ++i) {
    CAPTURE(i);
    const bool was_skipped = steps[i] == previous_step;
    previous_step = steps[i];
    skipped += was_skipped;
    CHECK(was_skipped == want_skipped[i].get<bool>());
    CHECK(scales[i] == want_scale[i].get<double>());
    CHECK(lrs[i] == doctest::Approx(expected.at("lr")[i].get<double>()).epsilon(1e-12));
    grew = grew || (i > 0 && scales[i] > scales[i - 1]);
  }
  // the run exercises what it is meant to: growth, and overflows beyond the two NaN batches
  CHECK(grew);
  CHECK(skipped > static_cast<std::int64_t>(poisoned.size()));
  CHECK(t.precision().skipped_steps() == skipped);
  CHECK(t.state().step == static_cast<std::int64_t>(scales.size()) - skipped);

  double largest = 0;
  for (const auto& p : net->named_parameters()) {
    const auto want = decode(expected.at("weights").at(p.key()));
    largest = std::max(largest, (p.value().detach() - want).abs().max().item<double>());
  }
  MESSAGE("largest weight difference from PyTorch: " << largest);
  CHECK(largest <= 1e-6);
}

TEST_CASE("with loss scaling, on_before_optimizer_step sees the true (unscaled) gradients") {
  struct grab {
    std::vector<torch::Tensor>* grads;
    void on_before_optimizer_step(kiln::context& ctx) {
      for (const auto& p : ctx.model.parameters()) grads->push_back(p.grad().clone());
    }
  };
  auto data = kiln::test::make_toy(16, 4);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> one{{data.x, data.y}};
  std::vector<torch::Tensor> scaled_run, plain_run;

  torch::manual_seed(9);
  kiln::test::Mlp a;
  kiln::trainer scaled{kiln::backbone<kiln::test::Mlp>{.module = a}, kiln::sgd{},
                       kiln::mixed_precision<scaled_fp32>{.init_scale = 1024.0},
                       kiln::callbacks{grab{&scaled_run}}};
  scaled.fit(one);
  torch::manual_seed(9);
  kiln::test::Mlp b;
  kiln::trainer plain{kiln::backbone<kiln::test::Mlp>{.module = b}, kiln::sgd{}, kiln::callbacks{grab{&plain_run}}};
  plain.fit(one);

  REQUIRE(scaled_run.size() == plain_run.size());
  for (std::size_t i = 0; i < plain_run.size(); ++i) {
    CHECK(torch::equal(scaled_run[i], plain_run[i]));  // a power of two scales and unscales exactly
  }
  CHECK(kiln::test::same_state(a, b));
}
