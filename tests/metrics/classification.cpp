// kiln/metrics/classification.hpp: confusion matrix, precision, recall, F1 and F-beta against
// scikit-learn, for every average and both zero_division values.
#include "parity.hpp"

#include <array>
#include <sstream>

namespace {
using kiln::average;
using kiln::test::labelled;
using kiln::test::random_cases;
using kiln::test::streamed;

constexpr const char* average_name(average a) {
  switch (a) {
    case average::binary: return "binary";
    case average::micro: return "micro";
    case average::macro: return "macro";
    default: return "weighted";
  }
}

// One case of each of precision, recall, f1 and fbeta with average A.
template <average A>
void add_set_scores(kiln::test::parity& cases, const labelled& c, double beta, double zero_division, random_cases& rng) {
  std::ostringstream options;
  options << " average=" << average_name(A) << " beta=" << beta << " zero_division=" << zero_division;
  const std::string common = " average=" + std::string{average_name(A)};
  const std::string zd = " zero_division=" + std::to_string(static_cast<int>(zero_division));
  cases.add("precision" + common + " beta=1" + zd, c.output, c.target,
            streamed(kiln::precision<A>{.zero_division = zero_division}, c.output, c.target, rng));
  cases.add("recall" + common + " beta=1" + zd, c.output, c.target,
            streamed(kiln::recall<A>{.zero_division = zero_division}, c.output, c.target, rng));
  cases.add("f1" + common + " beta=1" + zd, c.output, c.target,
            streamed(kiln::f1<A>{.zero_division = zero_division}, c.output, c.target, rng));
  cases.add("fbeta" + options.str(), c.output, c.target,
            streamed(kiln::fbeta<A>{.beta = beta, .zero_division = zero_division}, c.output, c.target, rng));
}

void add_all(kiln::test::parity& cases, const labelled& c, double beta, double zero_division, random_cases& rng) {
  const bool binary = kiln::detail::is_single_logit(c.output) || c.output.size(1) == 2;
  if (binary) add_set_scores<average::binary>(cases, c, beta, zero_division, rng);
  add_set_scores<average::micro>(cases, c, beta, zero_division, rng);
  add_set_scores<average::macro>(cases, c, beta, zero_division, rng);
  add_set_scores<average::weighted>(cases, c, beta, zero_division, rng);
  cases.add("confusion_matrix", c.output, c.target, streamed(kiln::confusion_matrix{}, c.output, c.target, rng));
}
}  // namespace

TEST_CASE("precision, recall, F1, F-beta and the confusion matrix equal scikit-learn's, edge cases included") {
  random_cases rng{23};
  kiln::test::parity cases{"classification"};
  const std::array betas{0.5, 1.0, 2.0, 0.0, 3.7};
  for (int i = 0; i < 130; ++i) {  // multi-class; some with two columns, which average::binary reads too
    add_all(cases, kiln::test::random_classification(rng, false), betas[i % betas.size()], i % 2, rng);
  }
  for (int i = 0; i < 130; ++i) {  // one logit per sample
    auto c = kiln::test::random_classification(rng, true);
    if (i % 2 == 0) c.target = c.target.to(torch::kFloat);
    add_all(cases, c, betas[i % betas.size()], i % 2, rng);
  }

  // Edge cases, by construction, each with zero_division 0 and 1.
  const auto target = torch::tensor({0, 1, 2, 2, 1, 0, 3}, torch::kLong);
  auto scores = torch::tensor({{3., 0., 0., 0.}, {0., 3., 0., 0.}, {0., 0., 3., 0.}, {0., 3., 0., 0.},
                               {0., 3., 0., 0.}, {3., 0., 0., 0.}, {0., 0., 3., 0.}},
                              torch::kDouble);
  const std::vector<labelled> edges{
      {scores, target},                                           // class 3 true but never predicted
      {scores, torch::tensor({0, 1, 2, 2, 1, 0, 2}, torch::kLong)},  // class 3 in neither: left out of macro
      {scores, torch::tensor({1, 1, 1, 1, 1, 1, 1}, torch::kLong)},  // a single true class
      {torch::zeros({7, 4}, torch::kDouble), target},             // all scores equal: everything predicted 0
      {torch::zeros({7, 4}, torch::kDouble), torch::zeros({7}, torch::kLong)},  // one class, always right
      {torch::full({5}, -1.0, torch::kDouble), torch::zeros({5}, torch::kLong)},  // binary: no positive anywhere
      {torch::full({5}, -1.0, torch::kDouble), torch::ones({5}, torch::kLong)},   // binary: positives never predicted
      {torch::full({5}, 2.0, torch::kDouble), torch::zeros({5}, torch::kLong)},   // binary: only false alarms
      {torch::tensor({0.5}, torch::kDouble), torch::tensor({1}, torch::kLong)},   // one sample
  };
  for (const auto& c : edges) {
    add_all(cases, c, 1.0, 0.0, rng);
    add_all(cases, c, 2.0, 1.0, rng);
  }
  CHECK(cases.check() <= kiln::test::parity_tolerance);
}

TEST_CASE("set metrics: names, option checks and input checks") {
  static_assert(kiln::f1<average::binary>::name == "f1");
  static_assert(kiln::f1<average::macro>::name == "f1_macro");
  static_assert(kiln::precision<average::micro>::name == "precision_micro");
  static_assert(kiln::recall<average::weighted>::name == "recall_weighted");
  static_assert(kiln::fbeta<average::macro>::name == "fbeta_macro");

  CHECK_THROWS_WITH_AS(kiln::metrics{kiln::fbeta<average::macro>{.beta = -1}},
                       "kiln::fbeta (fbeta_macro): beta must be a finite number >= 0, got -1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(kiln::metrics{kiln::precision<average::macro>{.beta = 2}},
                       "kiln::precision (precision_macro): beta must be left at 1 (it applies to kiln::fbeta only), got 2",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(kiln::metrics{kiln::f1<average::binary>{.zero_division = 0.5}},
                       "kiln metric 'f1': zero_division must be 0 or 1, got 0.5", std::invalid_argument);
  kiln::recall<average::binary> recall{.zero_division = 7};
  CHECK_THROWS_AS(recall.reset(torch::kCPU), std::invalid_argument);  // also checked where a pass starts

  kiln::f1<average::binary> f1;
  f1.reset(torch::kCPU);
  CHECK_THROWS_WITH_AS(f1.update(torch::zeros({4, 3}), torch::zeros({4}, torch::kLong)),
                       "kiln metric 'f1': average::binary needs a binary classifier (output [N], [N, 1] or [N, 2]), got "
                       "[4, 3]; use average::macro, micro or weighted for more classes",
                       std::invalid_argument);
  kiln::confusion_matrix matrix;
  matrix.reset(torch::kCPU);
  matrix.update(torch::zeros({4, 3}), torch::zeros({4}, torch::kLong));
  CHECK_THROWS_WITH_AS(matrix.update(torch::zeros({4, 5}), torch::zeros({4}, torch::kLong)),
                       "kiln metric 'confusion_matrix': the first batch of this pass had 3 classes, this one has 5; "
                       "every batch of a pass must have the same number of classes",
                       std::invalid_argument);
}

TEST_CASE("a confusion matrix is reported cell by cell") {
  kiln::metrics<kiln::confusion_matrix, kiln::accuracy> list;
  list.reset(torch::kCPU);
  list.update(torch::tensor({{2.0, 0.0, 0.0}, {0.0, 0.0, 1.0}, {0.0, 1.0, 0.0}}), torch::tensor({0, 1, 1}, torch::kLong));
  kiln::metric_values values;
  list.compute("val/", values);
  CHECK(values.size() == 10);
  CHECK(values.at("val/confusion_matrix[0,0]") == 1);
  CHECK(values.at("val/confusion_matrix[1,2]") == 1);
  CHECK(values.at("val/confusion_matrix[1,1]") == 1);
  CHECK(values.at("val/confusion_matrix[2,2]") == 0);
  CHECK(values.at("val/accuracy") == doctest::Approx(2.0 / 3.0));
  static_assert(!decltype(list)::has("confusion_matrix"));  // a table, not one value a scheduler could watch
}
