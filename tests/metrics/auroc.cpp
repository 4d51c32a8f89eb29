// kiln/metrics/auroc.hpp: AUROC and average precision against scikit-learn, ties included.
#include "parity.hpp"

namespace {
using kiln::average;
using kiln::test::labelled;
using kiln::test::random_cases;
using kiln::test::streamed;

// kiln sees the logits; the reference sees the probabilities kiln ranks: torch's softmax, which
// kiln applies. (numpy's softmax may round two probabilities that are equal in exact arithmetic
// differently, breaking a tie differently.)
template <average A>
void add_curves(kiln::test::parity& cases, const labelled& c, random_cases& rng, const char* average_name,
                bool softmax = true) {
  const std::string options = std::string{" average="} + average_name + (softmax ? " softmax=1" : " softmax=0");
  const auto ranked = A != average::binary && softmax ? c.output.softmax(1) : c.output;
  cases.add("auroc" + options, ranked, c.target, streamed(kiln::auroc<A>{.softmax = softmax}, c.output, c.target, rng));
  cases.add("average_precision" + options, ranked, c.target,
            streamed(kiln::average_precision<A>{.softmax = softmax}, c.output, c.target, rng));
}

void add_one_vs_rest(kiln::test::parity& cases, const labelled& c, random_cases& rng, bool softmax = true) {
  add_curves<average::macro>(cases, c, rng, "macro", softmax);
  add_curves<average::weighted>(cases, c, rng, "weighted", softmax);
  add_curves<average::micro>(cases, c, rng, "micro", softmax);
}
}  // namespace

TEST_CASE("AUROC and average precision equal scikit-learn's, ties and undefined cases included") {
  random_cases rng{37};
  kiln::test::parity cases{"auroc"};
  for (int i = 0; i < 130; ++i) {
    auto c = kiln::test::random_classification(rng, /*single_logit=*/true);
    if (i % 2 == 0) c.target = c.target.to(torch::kFloat);
    if (i % 3 == 0) c.output = c.output.unsqueeze(1);
    add_curves<average::binary>(cases, c, rng, "binary");
  }
  for (int i = 0; i < 130; ++i) add_one_vs_rest(cases, kiln::test::random_classification(rng, false), rng);
  for (int i = 0; i < 20; ++i) {  // probabilities already: ranked as given
    const auto c = kiln::test::random_classification(rng, false);
    add_one_vs_rest(cases, {c.output.softmax(1), c.target}, rng, /*softmax=*/false);
  }

  // Edge cases, by construction.
  const auto binary_target = torch::tensor({0, 1, 1, 0, 1, 0, 0, 1}, torch::kLong);
  const std::vector<labelled> binary_edges{
      {torch::zeros({8}, torch::kDouble), binary_target},                                    // all scores equal: 0.5
      {torch::tensor({1., 1., 2., 0., 1., 2., 0., 2.}, torch::kDouble), binary_target},      // ties across classes
      {torch::tensor({1., 2., 3., 4., 5., 6., 7., 8.}, torch::kDouble), torch::ones({8}, torch::kLong)},   // one class: nan AUROC
      {torch::tensor({1., 2., 3., 4., 5., 6., 7., 8.}, torch::kDouble), torch::zeros({8}, torch::kLong)},  // no positive: AP 0
      {torch::tensor({-1., -2., 3., 0., 5., -6., -7., 8.}, torch::kDouble), binary_target},  // perfectly separated
  };
  for (const auto& c : binary_edges) add_curves<average::binary>(cases, c, rng, "binary");

  const auto target = torch::tensor({0, 1, 2, 2, 1, 0, 2, 1}, torch::kLong);
  const std::vector<labelled> multi_edges{
      {torch::zeros({8, 3}, torch::kDouble), target},                                       // all scores equal
      {torch::tensor({{1., 0., 0.}, {1., 0., 0.}, {0., 1., 0.}, {0., 1., 0.}, {0., 0., 1.}, {1., 0., 0.}, {0., 0., 1.}, {0., 0., 1.}},
                     torch::kDouble), target},                                              // many ties
      {torch::randn({8, 4}, rng.generator, torch::kDouble), target},                        // class 3 absent: nan AUROC, AP 0
      {torch::randn({8, 3}, rng.generator, torch::kDouble), torch::full({8}, 2, torch::kLong)},  // a single class
  };
  for (const auto& c : multi_edges) add_one_vs_rest(cases, c, rng);
  CHECK(cases.check() <= kiln::test::parity_tolerance);
}

TEST_CASE("AUROC and average precision: names, undefined values and input checks") {
  static_assert(kiln::auroc<average::binary>::name == "auroc");
  static_assert(kiln::auroc<average::macro>::name == "auroc_ovr_macro");
  static_assert(kiln::auroc<average::weighted>::name == "auroc_ovr_weighted");
  static_assert(kiln::auroc<average::micro>::name == "auroc_ovr_micro");
  static_assert(kiln::average_precision<average::binary>::name == "average_precision");
  static_assert(kiln::average_precision<average::macro>::name == "average_precision_macro");

  kiln::auroc<average::binary> auroc;
  auroc.reset(torch::kCPU);
  auroc.update(torch::tensor({0.3, 0.1}), torch::tensor({1.0, 1.0}));
  CHECK(std::isnan(auroc.compute()));  // one class in the targets: scikit-learn raises
  kiln::average_precision<average::binary> ap;
  ap.reset(torch::kCPU);
  ap.update(torch::tensor({0.3, 0.1}), torch::tensor({0, 0}, torch::kLong));
  CHECK(ap.compute() == 0.0);  // no positive: scikit-learn's 0 (with a warning)

  CHECK_THROWS_WITH_AS(auroc.update(torch::zeros({4, 3}), torch::zeros({4}, torch::kLong)),
                       "kiln metric 'auroc': average::binary ranks one score per sample (output [N] or [N, 1]), got "
                       "[4, 3]; for class scores [N, C] use average::macro, weighted or micro",
                       std::invalid_argument);
  kiln::auroc<average::macro> ovr;
  ovr.reset(torch::kCPU);
  CHECK_THROWS_WITH_AS(ovr.update(torch::zeros({4}), torch::zeros({4}, torch::kLong)),
                       "kiln metric 'auroc_ovr_macro': one-vs-rest averaging needs class scores [N, C], got [4]; for a "
                       "binary classifier's logit use average::binary",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(static_cast<void>(ovr.compute()), "kiln metric 'auroc_ovr_macro': computed before any sample was seen", std::logic_error);
}

TEST_CASE("float32 scores are kept as they are and ranked in float64") {
  random_cases rng{41};
  const auto probabilities = rng.normal({300, 5}).softmax(1).to(torch::kFloat);
  const auto target = rng.classes(300, 5);
  kiln::auroc<average::weighted> single{.softmax = false}, twice{.softmax = false};
  single.reset(torch::kCPU);
  single.update(probabilities, target);
  twice.reset(torch::kCPU);
  twice.update(probabilities.to(torch::kDouble), target);
  CHECK(single.compute() == twice.compute());
}
