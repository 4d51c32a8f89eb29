// kiln/metrics/regression.hpp: MAE, MSE, RMSE and R² against scikit-learn.
#include "parity.hpp"

#include <limits>

namespace {
using kiln::test::labelled;
using kiln::test::random_cases;
using kiln::test::streamed;

void add_all(kiln::test::parity& cases, const labelled& c, random_cases& rng) {
  cases.add("mae", c.output, c.target, streamed(kiln::mean_absolute_error{}, c.output, c.target, rng));
  cases.add("mse", c.output, c.target, streamed(kiln::mean_squared_error{}, c.output, c.target, rng));
  cases.add("rmse", c.output, c.target, streamed(kiln::root_mean_squared_error{}, c.output, c.target, rng));
  cases.add("r2", c.output, c.target, streamed(kiln::r2_score{}, c.output, c.target, rng));
}

// Targets with an offset and a scale that vary over orders of magnitude; predictions near them.
labelled random_regression(random_cases& rng) {
  const std::int64_t n = rng.integer(2, 80), outputs = rng.chance(0.3) ? rng.integer(2, 4) : 1;
  const double offset = rng.chance(0.3) ? 1e4 : rng.chance(0.5) ? -3.0 : 0.0;
  const double scale = rng.chance(0.2) ? 1e-3 : rng.chance(0.5) ? 50.0 : 1.0;
  const auto shape = outputs == 1 ? std::vector<std::int64_t>{n} : std::vector<std::int64_t>{n, outputs};
  const auto target = rng.normal(shape, scale).add_(offset);
  auto output = target + rng.normal(shape, scale * (rng.chance(0.5) ? 0.3 : 2.0));
  if (outputs == 1 && rng.chance(0.3)) output = output.unsqueeze(1);  // a model's [N, 1] against [N]
  return {output, target};
}
}  // namespace

TEST_CASE("MAE, MSE, RMSE and R² equal scikit-learn's, edge cases included") {
  random_cases rng{53};
  kiln::test::parity cases{"regression"};
  for (int i = 0; i < 130; ++i) add_all(cases, random_regression(rng), rng);

  const auto y = torch::tensor({1.5, -2.0, 3.25, 0.0, 8.0}, torch::kDouble);
  const auto constant = torch::full({5}, 2.5, torch::kDouble);
  const std::vector<labelled> edges{
      {y.clone(), y},                                    // perfect: R² 1
      {torch::full({5}, y.mean().item<double>(), torch::kDouble), y},  // predicting the mean: R² 0
      {constant.clone(), constant},                      // constant target, exact: R² 1
      {y, constant},                                     // constant target, wrong: R² 0
      {torch::stack({y, y.flip(0)}, 1), torch::stack({y, constant}, 1)},  // two outputs, one constant
      {torch::tensor({1.0, 2.0}, torch::kDouble), torch::tensor({1.0, 4.0}, torch::kDouble)},  // two samples
  };
  for (const auto& c : edges) add_all(cases, c, rng);
  CHECK(cases.check() <= kiln::test::parity_tolerance);
}

TEST_CASE("R² of fewer than two samples is nan; a constant target is 0 or 1 even where rounding would blur it") {
  kiln::r2_score r2;
  r2.reset(torch::kCPU);
  r2.update(torch::tensor({1.0}, torch::kDouble), torch::tensor({2.0}, torch::kDouble));
  CHECK(std::isnan(r2.compute()));  // scikit-learn warns and returns nan

  // 0.1 summed three times is not 0.3: a sum of squared deviations from a rounded mean is tiny
  // but not 0, and 1 − SSres / tiny would be hugely negative. kiln sees that min == max.
  const auto tenth = torch::full({3}, 0.1, torch::kDouble);
  r2.reset(torch::kCPU);
  r2.update(tenth, tenth);
  CHECK(r2.compute() == 1.0);
  r2.reset(torch::kCPU);
  r2.update(tenth + 0.5, tenth);
  CHECK(r2.compute() == 0.0);
}

TEST_CASE("R² of targets far from zero keeps its precision across batches") {
  random_cases rng{59};
  const auto target = rng.normal({1000}).add_(1e8);
  const auto output = target + rng.normal({1000}, 0.5);
  const double ss_res = (target - output).square().sum().item<double>();
  const double ss_tot = (target - target.mean()).square().sum().item<double>();  // two passes, in one go
  kiln::r2_score r2;
  r2.reset(torch::kCPU);
  for (std::int64_t start = 0; start < 1000; start += 100) r2.update(output.narrow(0, start, 100), target.narrow(0, start, 100));
  CHECK(r2.compute() == doctest::Approx(1 - ss_res / ss_tot).epsilon(1e-12));
}

TEST_CASE("regression metrics check their input") {
  kiln::mean_absolute_error mae;
  mae.reset(torch::kCPU);
  CHECK_THROWS_WITH_AS(mae.update(torch::zeros({4, 2}), torch::zeros({4})),
                       "kiln metric 'mae': the output must match the target: [N] or [N, 1] against [N], or [N, D] against "
                       "[N, D]; got output [4, 2] and target [4]",
                       std::invalid_argument);
  mae.update(torch::zeros({4, 2}), torch::ones({4, 2}));
  CHECK_THROWS_WITH_AS(mae.update(torch::zeros({4, 3}), torch::ones({4, 3})),
                       "kiln metric 'mae': the first batch of this pass had 2 outputs per sample, this one has 3",
                       std::invalid_argument);
  CHECK(mae.compute() == 1.0);
  static_assert(kiln::root_mean_squared_error::name == "rmse");
  static_assert(kiln::r2_score::name == "r2");
}
