// kiln/metrics/accuracy.hpp: accuracy and top-k accuracy against scikit-learn.
#include "parity.hpp"

namespace {
using kiln::test::labelled;
using kiln::test::random_cases;
using kiln::test::streamed;

template <std::size_t K>
void add_top_k(kiln::test::parity& cases, const labelled& c, random_cases& rng) {
  cases.add("top_k_accuracy k=" + std::to_string(K), c.output, c.target, streamed(kiln::top_k_accuracy<K>{}, c.output, c.target, rng));
}
}  // namespace

TEST_CASE("accuracy and top-k accuracy equal scikit-learn's, edge cases included") {
  random_cases rng{11};
  kiln::test::parity cases{"accuracy"};
  auto add_accuracy = [&](const labelled& c) {
    cases.add("accuracy", c.output, c.target, streamed(kiln::accuracy{}, c.output, c.target, rng));
  };
  for (int i = 0; i < 120; ++i) add_accuracy(kiln::test::random_classification(rng, /*single_logit=*/false));
  for (int i = 0; i < 120; ++i) {
    auto c = kiln::test::random_classification(rng, /*single_logit=*/true);
    if (i % 2 == 0) c.target = c.target.to(torch::kFloat);  // kiln::bce_with_logits's float targets
    if (i % 3 == 0) c.output = c.output.unsqueeze(1);        // [N, 1]
    add_accuracy(c);
  }
  for (int i = 0; i < 120; ++i) {  // C >= 3: scikit-learn's top-k needs more than two classes
    const auto c = kiln::test::random_classification(rng, false, 3);
    add_top_k<1>(cases, c, rng);
    add_top_k<2>(cases, c, rng);
    add_top_k<3>(cases, c, rng);  // k >= C when C = 3: every sample a hit (scikit-learn warns)
    add_top_k<5>(cases, c, rng);
  }

  // Edge cases, by construction.
  const auto target = torch::tensor({0, 1, 2, 2, 1, 0, 2}, torch::kLong);
  const auto all_equal = torch::zeros({7, 3}, torch::kDouble);
  add_accuracy({all_equal, target});  // argmax of equal scores: class 0
  add_top_k<1>(cases, {all_equal, target}, rng);  // scikit-learn ranks equal scores higher index first
  add_top_k<2>(cases, {all_equal, target}, rng);
  const auto ties = torch::tensor({{1., 1., 0.}, {0., 2., 2.}, {3., 3., 3.}, {1., 0., 1.}, {0., 0., 1.}, {2., 2., 0.}, {1., 1., 1.}},
                                  torch::kDouble);
  for (auto c : {labelled{ties, target}, labelled{ties, torch::full({7}, 1, torch::kLong)}}) {  // ties; a single class
    add_accuracy(c);
    add_top_k<1>(cases, c, rng);
    add_top_k<2>(cases, c, rng);
  }
  add_accuracy({torch::tensor({0.5}, torch::kDouble), torch::tensor({1}, torch::kLong)});  // one sample
  add_accuracy({torch::zeros({4}, torch::kDouble), torch::ones({4}, torch::kLong)});        // logit 0 predicts class 0
  CHECK(cases.check() <= kiln::test::parity_tolerance);
}

TEST_CASE("top_k_accuracy<K> names itself after K and checks its input") {
  static_assert(kiln::top_k_accuracy<5>::name == "top5_accuracy");
  static_assert(kiln::top_k_accuracy<10>::name == "top10_accuracy");
  kiln::top_k_accuracy<2> top2;
  top2.reset(torch::kCPU);
  CHECK_THROWS_WITH_AS(top2.update(torch::zeros({4}), torch::zeros({4})),
                       "kiln metric 'top2_accuracy': the output must be class scores [N, C] with C >= 2, got [4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(static_cast<void>(top2.compute()), "kiln metric 'top2_accuracy': computed before any sample was seen",
                       std::logic_error);
  kiln::accuracy accuracy;
  accuracy.reset(torch::kCPU);
  CHECK_THROWS_WITH_AS(accuracy.update(torch::zeros({4, 3}), torch::zeros({5}, torch::kLong)),
                       "kiln metric 'accuracy': the target must hold one class index per output row ([N] or [N, 1]); "
                       "output [4, 3], target [5]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(accuracy.update(torch::zeros({4, 3, 2}), torch::zeros({4}, torch::kLong)),
                       "kiln metric 'accuracy': the output must be class scores [N, C] or a binary classifier's logits "
                       "[N] or [N, 1], got [4, 3, 2]",
                       std::invalid_argument);
}

TEST_CASE("accuracy resets between passes") {
  kiln::accuracy accuracy;
  accuracy.reset(torch::kCPU);
  accuracy.update(torch::tensor({{1.0, 0.0}, {0.0, 1.0}}), torch::tensor({0, 0}, torch::kLong));
  CHECK(accuracy.compute() == 0.5);
  accuracy.reset(torch::kCPU);
  accuracy.update(torch::tensor({{1.0, 0.0}}), torch::tensor({0}, torch::kLong));
  CHECK(accuracy.compute() == 1.0);
}
