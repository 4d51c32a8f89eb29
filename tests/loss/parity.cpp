// Every loss and its gradient with respect to the input against PyTorch itself (torch.nn.functional,
// torchvision.ops): random shapes, weights, ignored targets, options and reductions, generated
// here, computed in float64 on both sides, the reference by tests/reference/torch_losses.py in one
// Python process. Equal within 1e-6.
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../reference/reference.hpp"
#include "../support.hpp"

namespace {

using nlohmann::json;

json to_json(const torch::Tensor& t) {
  const auto flat = t.contiguous().reshape({-1});
  json data = json::array();
  if (flat.scalar_type() == torch::kLong) {
    for (std::int64_t i = 0; i < flat.numel(); ++i) data.push_back(flat[i].item<std::int64_t>());
  } else {
    const auto values = flat.to(torch::kDouble);
    for (std::int64_t i = 0; i < values.numel(); ++i) data.push_back(values[i].item<double>());
  }
  return {{"shape", t.sizes().vec()}, {"data", data}};
}

const char* reduction_name(kiln::reduction r) {
  switch (r) {
    case kiln::reduction::none:
      return "none";
    case kiln::reduction::sum:
      return "sum";
    case kiln::reduction::mean:
      break;
  }
  return "mean";
}

struct loss_case {
  json spec;
  torch::Tensor value, grad;  // kiln's
};

// Runs `loss` on (input, target) as the reference will: the gradient of the loss, or, for
// reduction none, of sum(loss · upstream).
template <class Loss>
loss_case run(json spec, const Loss& loss, const torch::Tensor& input, const torch::Tensor& target,
              kiln::reduction reduction, torch::Generator& gen) {
  auto x = input.detach().clone().requires_grad_(true);
  const torch::Tensor value = loss(x, target);
  const torch::Tensor upstream = torch::rand(value.sizes(), gen, torch::kDouble);
  (reduction == kiln::reduction::none ? (value * upstream).sum() : value).backward();
  spec["input"] = to_json(input);
  spec["upstream"] = to_json(upstream);
  spec["reduction"] = reduction_name(reduction);
  if (!spec.contains("target")) spec["target"] = to_json(target);
  return {std::move(spec), value.detach().reshape({-1}), x.grad().reshape({-1})};
}

class case_maker {
 public:
  explicit case_maker(std::uint64_t seed) : gen_(at::detail::createCPUGenerator(seed)), rng_(seed) {}

  std::int64_t uniform(std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(rng_);
  }
  template <class T>
  T pick(const std::vector<T>& xs) {
    return xs[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(xs.size()) - 1))];
  }
  kiln::reduction reduction() {
    return pick<kiln::reduction>({kiln::reduction::none, kiln::reduction::mean, kiln::reduction::sum});
  }
  torch::Tensor normal(std::vector<std::int64_t> shape, double scale = 2.0) {
    return torch::randn(shape, gen_, torch::kDouble) * scale;
  }
  torch::Tensor positive(std::vector<std::int64_t> shape) { return torch::rand(shape, gen_, torch::kDouble) + 0.1; }
  torch::Tensor binary(std::vector<std::int64_t> shape) { return torch::randint(0, 2, shape, gen_, torch::kDouble); }
  torch::Tensor classes(std::vector<std::int64_t> shape, std::int64_t c) {
    return torch::randint(0, c, shape, gen_, torch::kLong);
  }
  // Sets about `share` of the targets to ignore_index, and the first to a class that is not
  // ignored (ignore_index may be a class; a mean over no target is NaN on both sides).
  torch::Tensor ignore_some(torch::Tensor y, std::int64_t ignore_index, double share) {
    y = y.masked_fill(torch::rand(y.sizes(), gen_, torch::kDouble).lt(share), ignore_index);
    y.view({-1})[0] = ignore_index == 0 ? 1 : 0;
    return y;
  }
  // A classification shape: [N, C] or, sometimes, [N, C, d] (cross-entropy over a spatial dimension).
  std::vector<std::int64_t> logits_shape(std::int64_t c, bool spatial) {
    std::vector<std::int64_t> shape{uniform(1, 9), c};
    if (spatial) shape.push_back(uniform(1, 4));
    return shape;
  }
  torch::Generator& gen() { return gen_; }

 private:
  torch::Generator gen_;
  std::mt19937_64 rng_;
};

std::vector<loss_case> all_cases() {
  std::vector<loss_case> cases;
  case_maker make(7);
  for (int i = 0; i < 60; ++i) {  // cross-entropy, class-index targets
    const std::int64_t c = make.uniform(2, 6);
    const auto shape = make.logits_shape(c, i % 4 == 3);
    const auto x = make.normal(shape);
    std::vector<std::int64_t> target_shape{shape[0]};
    if (shape.size() == 3) target_shape.push_back(shape[2]);
    const std::int64_t ignore_index = make.pick<std::int64_t>({-100, 0, c - 1});
    const auto y = make.ignore_some(make.classes(target_shape, c), ignore_index, i % 3 == 0 ? 0.0 : 0.3);
    const auto weight = i % 2 == 0 ? make.positive({c}) : torch::Tensor{};
    const double smoothing = make.pick<double>({0.0, 0.1, 0.3});
    const auto r = make.reduction();
    json spec = {{"loss", "cross_entropy"}, {"ignore_index", ignore_index}, {"label_smoothing", smoothing}};
    if (weight.defined()) spec["weight"] = to_json(weight);
    cases.push_back(
        run(spec,
            kiln::cross_entropy{
                .weight = weight, .label_smoothing = smoothing, .ignore_index = ignore_index, .reduction = r},
            x, y, r, make.gen()));
  }
  for (int i = 0; i < 30; ++i) {  // cross-entropy, class-probability targets
    const std::int64_t c = make.uniform(2, 6);
    const auto shape = make.logits_shape(c, i % 5 == 4);
    const auto x = make.normal(shape);
    const auto y = torch::softmax(make.normal(shape), 1);
    const auto weight = i % 2 == 0 ? make.positive({c}) : torch::Tensor{};
    const double smoothing = make.pick<double>({0.0, 0.2});
    const auto r = make.reduction();
    json spec = {{"loss", "cross_entropy"}, {"ignore_index", -100}, {"label_smoothing", smoothing}};
    spec["target"] = to_json(y);
    spec["target"]["probabilities"] = true;
    if (weight.defined()) spec["weight"] = to_json(weight);
    cases.push_back(run(spec, kiln::cross_entropy{.weight = weight, .label_smoothing = smoothing, .reduction = r}, x,
                        y, r, make.gen()));
  }
  for (int i = 0; i < 40; ++i) {  // sigmoid focal loss: hard and soft targets, alpha off (< 0), gamma 0
    const auto shape = make.pick<std::vector<std::int64_t>>({{7}, {5, 3}, {2, 4, 3}});
    const auto x = make.normal(shape, 3.0);
    const auto y = i % 4 == 0 ? torch::rand(shape, make.gen(), torch::kDouble) : make.binary(shape);
    const double alpha = make.pick<double>({0.25, 0.5, 0.9, -1.0});
    const double gamma = make.pick<double>({0.0, 1.0, 2.0, 2.5});
    const auto r = make.reduction();
    cases.push_back(run({{"loss", "sigmoid_focal_loss"}, {"alpha", alpha}, {"gamma", gamma}},
                        kiln::sigmoid_focal_loss{.alpha = alpha, .gamma = gamma, .reduction = r}, x, y, r,
                        make.gen()));
  }
  for (int i = 0; i < 40; ++i) {  // softmax focal loss: per-class alpha, ignored targets
    const std::int64_t c = make.uniform(2, 7);
    const auto x = make.normal({make.uniform(1, 10), c}, 3.0);
    const std::int64_t ignore_index = make.pick<std::int64_t>({-100, 1});
    const auto y = make.ignore_some(make.classes({x.size(0)}, c), ignore_index, i % 2 == 0 ? 0.3 : 0.0);
    const auto alpha = i % 3 == 0 ? torch::Tensor{} : make.positive({c});
    const double gamma = make.pick<double>({0.0, 1.0, 2.0, 3.5});
    const auto r = make.reduction();
    json spec = {{"loss", "softmax_focal_loss"}, {"gamma", gamma}, {"ignore_index", ignore_index}};
    if (alpha.defined()) spec["alpha"] = to_json(alpha);
    cases.push_back(run(
        spec, kiln::softmax_focal_loss{.alpha = alpha, .gamma = gamma, .ignore_index = ignore_index, .reduction = r},
        x, y, r, make.gen()));
  }
  for (int i = 0; i < 30; ++i) {  // BCE with logits: weight, pos_weight
    const std::int64_t c = make.uniform(1, 5);
    const std::vector<std::int64_t> shape{make.uniform(1, 8), c};
    const auto x = make.normal(shape, 3.0);
    const auto y = i % 3 == 0 ? torch::rand(shape, make.gen(), torch::kDouble) : make.binary(shape);
    const auto weight = i % 2 == 0 ? make.positive(shape) : torch::Tensor{};
    const auto pos_weight = i % 4 < 2 ? make.positive({c}) * 3 : torch::Tensor{};
    const auto r = make.reduction();
    json spec = {{"loss", "bce_with_logits"}};
    if (weight.defined()) spec["weight"] = to_json(weight);
    if (pos_weight.defined()) spec["pos_weight"] = to_json(pos_weight);
    cases.push_back(run(spec, kiln::bce_with_logits{.weight = weight, .pos_weight = pos_weight, .reduction = r}, x, y,
                        r, make.gen()));
  }
  for (int i = 0; i < 80; ++i) {  // regression: mse, l1, huber (delta), smooth_l1 (beta, 0 included)
    const auto shape = make.pick<std::vector<std::int64_t>>({{6}, {4, 3}, {2, 3, 2}});
    const auto x = make.normal(shape), y = make.normal(shape);
    const auto r = make.reduction();
    switch (i % 4) {
      case 0:
        cases.push_back(run({{"loss", "mse"}}, kiln::mse{.reduction = r}, x, y, r, make.gen()));
        break;
      case 1:
        cases.push_back(run({{"loss", "l1"}}, kiln::l1{.reduction = r}, x, y, r, make.gen()));
        break;
      case 2: {
        const double delta = make.pick<double>({0.5, 1.0, 2.0});
        cases.push_back(run({{"loss", "huber"}, {"delta", delta}}, kiln::huber{.delta = delta, .reduction = r}, x, y,
                            r, make.gen()));
        break;
      }
      default: {
        const double beta = make.pick<double>({0.0, 0.5, 1.0, 2.0});
        cases.push_back(run({{"loss", "smooth_l1"}, {"beta", beta}}, kiln::smooth_l1{.beta = beta, .reduction = r}, x,
                            y, r, make.gen()));
      }
    }
  }
  return cases;
}

}  // namespace

TEST_CASE("every loss and its input gradient equal PyTorch's within 1e-6") {
  const auto cases = all_cases();
  json specs = json::array();
  for (const auto& c : cases) specs.push_back(c.spec);
  const json reference = kiln::test::run_reference("torch_losses.py", specs);
  REQUIRE(reference.size() == cases.size());

  std::map<std::string, std::pair<std::size_t, double>> worst;  // loss -> (cases, worst error)
  double overall = 0;
  std::string where = "(none)";
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string kind = cases[i].spec.at("loss");
    auto& [count, kind_worst] = worst[kind];
    ++count;
    for (const char* key : {"value", "grad"}) {
      const auto ours = key[0] == 'v' ? cases[i].value : cases[i].grad;
      const auto& theirs = reference[i].at(key);
      REQUIRE_MESSAGE(ours.numel() == static_cast<std::int64_t>(theirs.size()), kind, " case ", i, " ", key);
      for (std::int64_t j = 0; j < ours.numel(); ++j) {
        const double a = ours[j].item<double>(), b = theirs[static_cast<std::size_t>(j)].get<double>();
        const double error = std::abs(a - b) / std::max(1.0, std::abs(b));
        kind_worst = std::max(kind_worst, error);
        if (error > overall || error != error) {
          overall = error;
          char text[200];
          std::snprintf(text, sizeof text, "%s case %zu %s[%lld]: kiln %.17g, torch %.17g", kind.c_str(), i, key,
                        static_cast<long long>(j), a, b);
          where = text;
        }
      }
    }
  }
  std::string summary;
  for (const auto& [kind, entry] : worst) {
    char text[120];
    std::snprintf(text, sizeof text, "\n  %-20s %3zu cases, worst %.3g", kind.c_str(), entry.first, entry.second);
    summary += text;
  }
  MESSAGE("loss parity (value and input gradient; error = |kiln - torch| / max(1, |torch|)):", summary);
  CHECK_MESSAGE(overall <= 1e-6, where);
}

TEST_CASE("a loss with reduction none is refused by a trainer, and works when called directly") {
  using kiln::test::Mlp;
  CHECK_THROWS_WITH(
      ([] {
        kiln::trainer t{kiln::backbone<Mlp>{}, kiln::mse{.reduction = kiln::reduction::none}};
      })(),
      "kiln::mse: reduction must be mean or sum to train a pipeline (none gives one loss per element, for "
      "calling the loss directly), got none");
  CHECK_THROWS_WITH(
      ([] {
        kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sigmoid_focal_loss{.reduction = kiln::reduction::none}};
      })(),
      doctest::Contains("kiln::sigmoid_focal_loss: reduction must be mean or sum"));
  CHECK_THROWS_WITH(([] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::softmax_focal_loss{.gamma = -1}};
                    })(),
                    "kiln::softmax_focal_loss: gamma must be a finite number >= 0, got -1");
  CHECK_THROWS_WITH(([] {
                      kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sigmoid_focal_loss{.alpha = 1.5}};
                    })(),
                    "kiln::sigmoid_focal_loss: alpha must be at most 1 (negative: no weighting), got 1.5");
  const auto per_element = kiln::l1{.reduction = kiln::reduction::none}(torch::ones({4, 2}), torch::zeros({4, 2}));
  CHECK(per_element.sizes() == torch::IntArrayRef{4, 2});
}

TEST_CASE("softmax focal loss with gamma 0 and no alpha is cross-entropy; focal losses train a pipeline") {
  auto x = torch::randn({16, 5}, torch::kDouble);
  auto y = torch::randint(0, 5, {16}, torch::kLong);
  y[3] = -100;
  CHECK(kiln::softmax_focal_loss{.gamma = 0}(x, y).item<double>() ==
        doctest::Approx(torch::nn::functional::cross_entropy(x, y).item<double>()).epsilon(1e-12));

  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::softmax_focal_loss{.alpha = torch::ones({3})},
                  kiln::sgd{.lr = 0.1}};
  const auto history = t.fit(batches, {.epochs = 2});
  CHECK(history.back().at("train/loss") < history.front().at("train/loss"));

  auto binary = (data.x.narrow(1, 0, 1) > 0).to(torch::kFloat);
  kiln::data::tensor_batches binary_batches{data.x, binary, {.batch_size = 16}};
  kiln::trainer b{kiln::backbone<kiln::test::Mlp>{.module = kiln::test::Mlp(8, 16, 1)}, kiln::sigmoid_focal_loss{},
                  kiln::sgd{.lr = 0.5}};
  const auto binary_history = b.fit(binary_batches, {.epochs = 3});
  CHECK(binary_history.back().at("train/loss") < binary_history.front().at("train/loss"));
}
