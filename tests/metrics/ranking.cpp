// kiln/metrics/ranking.hpp: NDCG@k against scikit-learn's ndcg_score; MRR and MAP@k against
// their definitions written in numpy (tests/reference/sklearn_metrics.py).
#include "parity.hpp"

namespace {
using kiln::test::labelled;
using kiln::test::random_cases;
using kiln::test::streamed;

template <std::size_t K>
std::string k_option() {
  return K == kiln::whole_list ? std::string{} : " k=" + std::to_string(K);
}

template <std::size_t K>
void add_cut(kiln::test::parity& cases, const labelled& c, random_cases& rng, bool with_ndcg) {
  if (with_ndcg) cases.add("ndcg" + k_option<K>(), c.output, c.target, streamed(kiln::ndcg<K>{}, c.output, c.target, rng));
  cases.add("map" + k_option<K>(), c.output, c.target, streamed(kiln::mean_average_precision<K>{}, c.output, c.target, rng));
}

void add_all(kiln::test::parity& cases, const labelled& c, random_cases& rng) {
  const bool with_ndcg = c.output.size(1) > 1;  // scikit-learn refuses lists of one item
  cases.add("mrr", c.output, c.target, streamed(kiln::mean_reciprocal_rank{}, c.output, c.target, rng));
  add_cut<1>(cases, c, rng, with_ndcg);
  add_cut<3>(cases, c, rng, with_ndcg);
  add_cut<10>(cases, c, rng, with_ndcg);  // often longer than the list
  add_cut<kiln::whole_list>(cases, c, rng, with_ndcg);
}

// Q queries of L items; scores continuous or in a few steps (ties); relevance graded 0..3 or
// binary, sparse or dense, sometimes with queries that have no relevant item.
labelled random_queries(random_cases& rng) {
  const std::int64_t queries = rng.integer(1, 30), length = rng.integer(2, 12);
  const auto scores = rng.chance(0.6) ? rng.normal({queries, length}) : rng.steps({queries, length}, 0, 3);
  auto relevance = rng.chance(0.5) ? rng.steps({queries, length}, 0, 3) : rng.steps({queries, length}, 0, 1);
  if (rng.chance(0.5)) relevance.mul_(rng.steps({queries, length}, 0, 2).gt(1).to(torch::kDouble));  // sparser
  return {scores, relevance};
}
}  // namespace

TEST_CASE("NDCG@k equals scikit-learn's; MRR and MAP@k equal their definitions; edge cases included") {
  random_cases rng{67};
  kiln::test::parity cases{"ranking"};
  for (int i = 0; i < 130; ++i) add_all(cases, random_queries(rng), rng);

  const auto relevance = torch::tensor({{0., 2., 1., 0., 3.}, {1., 0., 0., 0., 0.}, {0., 0., 0., 0., 0.}}, torch::kDouble);
  const std::vector<labelled> edges{
      {torch::zeros({3, 5}, torch::kDouble), relevance},  // all scores equal (a query with no relevant item too)
      {torch::tensor({{1., 1., 0., 0., 1.}, {2., 2., 2., 1., 1.}, {0., 1., 0., 1., 0.}}, torch::kDouble), relevance},  // ties
      {relevance.clone(), relevance},                      // the ideal order
      {-relevance, relevance},                             // the worst order
      {torch::randn({4, 5}, rng.generator, torch::kDouble), torch::zeros({4, 5}, torch::kDouble)},  // nothing relevant
  };
  for (const auto& c : edges) add_all(cases, c, rng);
  CHECK(cases.check() <= kiln::test::parity_tolerance);
}

TEST_CASE("ranking metrics: names, one-item lists and input checks") {
  static_assert(kiln::ndcg<10>::name == "ndcg@10");
  static_assert(kiln::ndcg<>::name == "ndcg");
  static_assert(kiln::mean_average_precision<5>::name == "map@5");
  static_assert(kiln::mean_reciprocal_rank::name == "mrr");

  kiln::ndcg<3> ndcg;  // scikit-learn refuses one-item lists; kiln: 1 if relevant, else 0
  ndcg.reset(torch::kCPU);
  ndcg.update(torch::tensor({{0.2}, {0.7}}), torch::tensor({{2.0}, {0.0}}));
  CHECK(ndcg.compute() == 0.5);

  kiln::mean_reciprocal_rank mrr;
  mrr.reset(torch::kCPU);
  mrr.update(torch::tensor({{0.5, 0.5, 0.5}}), torch::tensor({{0.0, 1.0, 1.0}}));  // equal scores: list order
  CHECK(mrr.compute() == 0.5);
  CHECK_THROWS_WITH_AS(mrr.update(torch::zeros({2, 3}), torch::zeros({2, 4})),
                       "kiln metric 'mrr': scores (output) and relevance (target) must both be [Q, L], Q queries of L "
                       ">= 1 items; got [2, 3] and [2, 4]",
                       std::invalid_argument);
}
