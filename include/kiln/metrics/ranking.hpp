// kiln/metrics/ranking.hpp — ranking metrics over queries: how well each query's scores put its
// relevant items first.
//
//   kiln::mean_reciprocal_rank       "mrr": 1 / rank of the first relevant item; when one good
//                                    answer near the top is all that counts (search, QA)
//   kiln::ndcg<K>                    "ndcg@K": graded relevance, discounted by log2 of the rank,
//                                    over the top K; relative to the ideal order
//   kiln::mean_average_precision<K>  "map@K": precision at each relevant item of the top K
//                                    (recommendation lists with binary relevance)
//
// K = kiln::whole_list (the default) uses the whole list and drops "@K" from the name; a K
// larger than a list is the whole list.
//
// Inputs, per batch: output = scores [Q, L] (Q queries of L items; higher is ranked first),
// target = relevance [Q, L] (graded, >= 0, for ndcg; for mrr and map an item is relevant when its
// relevance is > 0). Each metric is the mean over queries of a per-query value, computed when the
// batch arrives (on the device, shapes fixed: sort, cumulative sums, gathers) and added to a
// float64 sum on the device; queries are counted on the host. Definitions, per query:
//
//   ndcg@K  scikit-learn's ndcg_score(relevance, scores, k=K) (tests/metrics/ranking.cpp checks
//           it): DCG = Σ_{rank i ≤ K} relevance / log2(i + 1), with tied scores sharing the mean
//           relevance of their run over the ranks the run spans (scikit-learn's ignore_ties=False;
//           McSherry & Najork 2008); divided by the DCG of the items sorted by relevance. A query
//           with no relevant item scores 0 and counts in the mean, as in scikit-learn.
//           (scikit-learn refuses lists of one item; kiln gives 1 if it is relevant, else 0.)
//   mrr     1 / rank of the first relevant item; 0 when the query has none (it counts in the
//           mean).
//   map@K   (1 / min(K, R)) · Σ_{i ≤ K} P@i · rel_i, where R is the number of relevant items in
//           the whole list, rel_i is 1 when the item at rank i is relevant, and P@i is the
//           fraction of relevant items among the first i; 0 when R = 0 (it counts in the mean).
//
// mrr and map have no scikit-learn function: their tests compare with the definitions above
// written in numpy. For both, equal scores are ranked by their position in the list, earlier
// first (a stable sort by descending score), so a result never depends on the sort's whims.
#pragma once

#include <kiln/detail/linkage.hpp>
#include <kiln/core/processes.hpp>
#include <kiln/metrics/inputs.hpp>
#include <kiln/detail/name_chars.hpp>

#include <torch/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {

/// The K of a ranking metric that looks at the whole list.
inline constexpr std::size_t whole_list = 0;

namespace detail {

enum class query_score { reciprocal_rank, ndcg, average_precision };

template <query_score S, std::size_t K>
constexpr auto query_score_name() {
  constexpr auto base = [] {
    if constexpr (S == query_score::reciprocal_rank) return name_chars("mrr");
    else if constexpr (S == query_score::ndcg) return name_chars("ndcg");
    else return name_chars("map");
  }();
  if constexpr (K == whole_list) return base;
  else return base + name_chars("@") + decimal<K>();
}

/// 1-based ranks 1 .. L as float64 [L].
inline torch::Tensor ranks(std::int64_t length, const torch::TensorOptions& options) {
  return torch::arange(1, length + 1, options.dtype(torch::kDouble));
}

/// Relevance (> 0) of each item in ranked order: a stable sort by descending score.
inline torch::Tensor relevant_in_rank_order(const torch::Tensor& scores, const torch::Tensor& relevance) {
  const auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  return relevance.gather(1, order).gt(0).to(torch::kDouble);
}

/// Per-query reciprocal rank of the first relevant item (0 when none): [Q].
inline torch::Tensor reciprocal_ranks(const torch::Tensor& scores, const torch::Tensor& relevance) {
  const auto relevant = relevant_in_rank_order(scores, relevance);
  return relevant.div(ranks(scores.size(1), relevant.options())).amax(1);
}

/// Per-query average precision over the first `cut` ranks (0 when no item is relevant): [Q].
KILN_DECL torch::Tensor average_precisions(const torch::Tensor& scores, const torch::Tensor& relevance,
                                           std::int64_t cut);

/// Per-query NDCG over the first `cut` ranks, tied scores averaged as scikit-learn: [Q].
KILN_DECL torch::Tensor ndcgs(const torch::Tensor& scores, const torch::Tensor& relevance, std::int64_t cut);

/// MRR, NDCG@K or MAP@K; the public names are the aliases below.
template <query_score S, std::size_t K>
class query_metric {
 public:
  static constexpr std::string_view name = static_name<query_score_name<S, K>()>;

  void reset(const torch::Device& device) {
    sum_ = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kDouble));
    queries_ = 0;
  }

  void update(const torch::Tensor& output, const torch::Tensor& target) {
    if (output.dim() != 2 || output.sizes() != target.sizes() || output.size(1) < 1) {
      metric_error(name, "scores (output) and relevance (target) must both be [Q, L], Q queries of L >= 1 items; got ",
                   output.sizes(), " and ", target.sizes());
    }
    const std::int64_t length = output.size(1);
    const std::int64_t cut = K == whole_list ? length : std::min<std::int64_t>(static_cast<std::int64_t>(K), length);
    if constexpr (S == query_score::reciprocal_rank) {
      sum_.add_(reciprocal_ranks(output, target).sum());
    } else if constexpr (S == query_score::ndcg) {
      sum_.add_(ndcgs(output, target, cut).sum());
    } else {
      sum_.add_(average_precisions(output, target, cut).sum());
    }
    queries_ += output.size(0);
  }

  /// The sums of all the processes (kiln/core/processes.hpp).
  void reduce(processes& group) {
    group.sum_into(sum_);
    queries_ = group.sum(queries_);
  }

  [[nodiscard]] double compute() const {
    check_seen(name, queries_ > 0);
    return sum_.item<double>() / static_cast<double>(queries_);
  }

 private:
  torch::Tensor sum_;  // Σ of the per-query values, float64 on the device
  std::int64_t queries_ = 0;
};

}  // namespace detail

/// Mean reciprocal rank of the first relevant item.
///
///   kiln::metrics<kiln::mean_reciprocal_rank>{}   // "val/mrr"
using mean_reciprocal_rank = detail::query_metric<detail::query_score::reciprocal_rank, whole_list>;

/// Normalised discounted cumulative gain of the top K (scikit-learn's ndcg_score).
///
///   kiln::metrics<kiln::ndcg<10>>{}   // "val/ndcg@10"
///   kiln::metrics<kiln::ndcg<>>{}     // "val/ndcg", the whole list
template <std::size_t K = whole_list>
using ndcg = detail::query_metric<detail::query_score::ndcg, K>;

/// Mean average precision of the top K, normalised by min(K, relevant items).
///
///   kiln::metrics<kiln::mean_average_precision<5>>{}   // "val/map@5"
template <std::size_t K = whole_list>
using mean_average_precision = detail::query_metric<detail::query_score::average_precision, K>;

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL torch::Tensor average_precisions(const torch::Tensor& scores, const torch::Tensor& relevance,
                                           std::int64_t cut) {
  const auto relevant = relevant_in_rank_order(scores, relevance);
  const auto precision_at = relevant.cumsum(1).div(ranks(scores.size(1), relevant.options()));
  const auto sum = precision_at.mul(relevant).narrow(1, 0, cut).sum(1);  // 0 when nothing is relevant
  return sum / relevant.sum(1).clamp_max(static_cast<double>(cut)).clamp_min(1);
}

KILN_DECL torch::Tensor ndcgs(const torch::Tensor& scores, const torch::Tensor& relevance, std::int64_t cut) {
  const auto queries = scores.size(0), length = scores.size(1);
  const auto gain = relevance.to(torch::kDouble);
  const auto rank = ranks(length, gain.options());
  const auto discount = (rank + 1).log2().reciprocal().mul(rank.le(static_cast<double>(cut)));

  // Number the runs of equal scores in ranked order (0, 1, ...); a run's items share the mean
  // of their gains over the sum of the discounts of the ranks the run spans.
  const auto [sorted, order] = scores.sort(/*dim=*/1, /*descending=*/true);
  const auto starts_run = torch::cat({torch::ones({queries, 1}, scores.options().dtype(torch::kBool)),
                                      sorted.narrow(1, 1, length - 1).ne(sorted.narrow(1, 0, length - 1))}, 1);
  const auto run = starts_run.to(torch::kLong).cumsum(1).sub_(1);
  auto per_run = [&](const torch::Tensor& values) { return torch::zeros_like(gain).scatter_add_(1, run, values); };
  const auto run_size = per_run(torch::ones_like(gain));
  const auto dcg = per_run(gain.gather(1, order))
                       .mul_(per_run(discount.expand({queries, length})))
                       .div_(run_size.clamp_min(1))  // runs past the last hold nothing
                       .sum(1);

  const auto ideal = std::get<0>(gain.sort(/*dim=*/1, /*descending=*/true)).matmul(discount);
  const auto relevant = ideal.gt(0);  // a query with nothing relevant scores 0
  return dcg.mul(relevant).div(ideal.add(ideal.le(0)));
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
