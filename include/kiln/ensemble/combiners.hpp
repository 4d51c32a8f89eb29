// kiln/ensemble/combiners.hpp — the rules that combine several models' outputs into one.
//
//   kiln::ensemble::soft_vote{.weights}   the (weighted) mean of the members' probabilities:
//                                         softmax of class scores, sigmoid of binary logits; the
//                                         mean of predicted values. scikit-learn's
//                                         VotingClassifier(voting="soft") and VotingRegressor
//   kiln::ensemble::logit_mean{.weights}  the (weighted) mean of the members' logits, as
//                                         probabilities: softmax (or sigmoid) of the mean logit,
//                                         which is the normalized (weighted) geometric mean of
//                                         the members' probabilities; one confident member
//                                         counts for more than under soft_vote
//   kiln::ensemble::hard_vote{.weights}   the class most (weighted) members predict, as int64
//                                         labels; a tie goes to the lowest class, as in
//                                         VotingClassifier(voting="hard") (numpy's argmax of
//                                         the weighted bincount). Binary logits vote per output:
//                                         logit > 0 is class 1
//   kiln::ensemble::rank_mean{.weights}   for one score per sample (a binary logit, the two
//                                         class scores of a binary classifier, a value): the
//                                         (weighted) mean of each member's ranks, ties sharing
//                                         their mean rank (scipy's rankdata), divided by N, in
//                                         (0, 1]. For AUROC-scored tasks, where members'
//                                         scores live on different scales
//
// Which rule an ensemble uses is its combiner's type. Weights, when given, are one per member,
// finite and ≥ 0, not all 0; empty means all equal. Members' outputs must have one shape; they
// are combined in double precision, whatever their dtype. tests/ensemble/combiners.cpp checks
// soft and hard voting against scikit-learn's VotingClassifier (with weights and ties), and the
// geometric mean and the ranks against their definitions in numpy and scipy, within 1e-12.
//
//   std::vector<torch::Tensor> logits = {a.predict(test), b.predict(test)};
//   auto p = kiln::ensemble::combine(kiln::ensemble::soft_vote{}, logits, kiln::output_kind::class_scores);
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/describe.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/loss/loss.hpp>

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::ensemble {

struct soft_vote {
  std::vector<double> weights;  ///< one per member; empty: all equal
  static constexpr std::string_view name = "kiln::ensemble::soft_vote";
};
struct logit_mean {
  std::vector<double> weights;
  static constexpr std::string_view name = "kiln::ensemble::logit_mean";
};
struct hard_vote {
  std::vector<double> weights;
  static constexpr std::string_view name = "kiln::ensemble::hard_vote";
};
struct rank_mean {
  std::vector<double> weights;
  static constexpr std::string_view name = "kiln::ensemble::rank_mean";
};

/// A combiner: one of the four above.
template <class C>
concept Combiner = std::same_as<C, soft_vote> || std::same_as<C, logit_mean> || std::same_as<C, hard_vote> ||
                   std::same_as<C, rank_mean>;

/// The members' outputs, of kind `kind`, combined by the rule of `combiner` (see the file comment).
KILN_DECL torch::Tensor combine(const soft_vote& combiner, std::span<const torch::Tensor> outputs, output_kind kind);
KILN_DECL torch::Tensor combine(const logit_mean& combiner, std::span<const torch::Tensor> outputs, output_kind kind);
KILN_DECL torch::Tensor combine(const hard_vote& combiner, std::span<const torch::Tensor> outputs, output_kind kind);
KILN_DECL torch::Tensor combine(const rank_mean& combiner, std::span<const torch::Tensor> outputs, output_kind kind);

}  // namespace kiln::ensemble

namespace kiln::detail {

/// The members' outputs in double, after checking that there are some and that they agree in
/// shape; and the weights, normalized to sum to 1.
struct ensemble_inputs {
  std::vector<torch::Tensor> outputs;
  std::vector<double> weights;
};
KILN_DECL ensemble_inputs ensemble_inputs_of(std::string_view who, std::span<const torch::Tensor> outputs,
                                             const std::vector<double>& weights);

/// Σ weights[i] · values[i].
KILN_DECL torch::Tensor weighted_sum(const std::vector<torch::Tensor>& values, const std::vector<double>& weights);

/// The ranks of `scores` [N], ties sharing the mean of their ranks, from 1.
KILN_DECL torch::Tensor average_ranks(const torch::Tensor& scores);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL ensemble_inputs ensemble_inputs_of(std::string_view who, std::span<const torch::Tensor> outputs,
                                             const std::vector<double>& weights) {
  if (outputs.empty()) throw std::invalid_argument(concat(who, ": the ensemble has no members"));
  ensemble_inputs in;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined() || outputs[i].sizes() != outputs.front().sizes()) {
      throw std::invalid_argument(concat(
          who, ": member ", i, "'s output is ", outputs[i].defined() ? describe(outputs[i]) : std::string{"undefined"},
          " but member 0's is ", describe(outputs.front()),
          "; the members must predict the same samples with the same number of outputs"));
    }
    in.outputs.push_back(outputs[i].detach().to(torch::kCPU, torch::kDouble));
  }
  if (weights.empty()) {
    in.weights.assign(outputs.size(), 1.0 / static_cast<double>(outputs.size()));
    return in;
  }
  if (weights.size() != outputs.size()) {
    throw std::invalid_argument(concat(who, ": ", weights.size(), " weights for ", outputs.size(),
                                       " members; give one weight per member, or none for equal weights"));
  }
  double total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    check_non_negative(who, concat("weights[", i, "]"), weights[i]);
    total += weights[i];
  }
  if (total <= 0) throw std::invalid_argument(concat(who, ": the weights are all 0; give some member a weight"));
  for (const double w : weights) in.weights.push_back(w / total);
  return in;
}

KILN_DECL torch::Tensor weighted_sum(const std::vector<torch::Tensor>& values, const std::vector<double>& weights) {
  torch::Tensor sum = values.front() * weights.front();
  for (std::size_t i = 1; i < values.size(); ++i) sum.add_(values[i], weights[i]);
  return sum;
}

KILN_DECL torch::Tensor average_ranks(const torch::Tensor& scores) {
  const auto n = scores.size(0);
  const auto values = scores.contiguous();
  const double* v = values.data_ptr<double>();
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return v[a] < v[b]; });
  auto ranks = torch::empty({n}, torch::kDouble);
  double* r = ranks.data_ptr<double>();
  for (std::int64_t start = 0; start < n;) {
    std::int64_t end = start + 1;
    while (end < n && v[order[static_cast<std::size_t>(end)]] == v[order[static_cast<std::size_t>(start)]]) ++end;
    const double mean_rank = static_cast<double>(start + 1 + end) / 2.0;  // ranks start+1 … end
    for (std::int64_t i = start; i < end; ++i) r[order[static_cast<std::size_t>(i)]] = mean_rank;
    start = end;
  }
  return ranks;
}

}  // namespace kiln::detail

namespace kiln::ensemble {

KILN_DECL torch::Tensor combine(const soft_vote& combiner, std::span<const torch::Tensor> outputs, output_kind kind) {
  auto in = detail::ensemble_inputs_of(soft_vote::name, outputs, combiner.weights);
  if (kind != output_kind::values) {
    for (auto& output : in.outputs) output = detail::probabilities(output, kind, /*class_dim=*/-1);
  }
  return detail::weighted_sum(in.outputs, in.weights);
}

KILN_DECL torch::Tensor combine(const logit_mean& combiner, std::span<const torch::Tensor> outputs, output_kind kind) {
  if (kind == output_kind::values) {
    throw std::invalid_argument(
        "kiln::ensemble::logit_mean: the members predict values, which are not logits; use soft_vote for their mean");
  }
  auto in = detail::ensemble_inputs_of(logit_mean::name, outputs, combiner.weights);
  return detail::probabilities(detail::weighted_sum(in.outputs, in.weights), kind, /*class_dim=*/-1);
}

KILN_DECL torch::Tensor combine(const hard_vote& combiner, std::span<const torch::Tensor> outputs, output_kind kind) {
  if (kind == output_kind::values) {
    throw std::invalid_argument(
        "kiln::ensemble::hard_vote: the members predict values, not classes; use soft_vote for their mean");
  }
  auto in = detail::ensemble_inputs_of(hard_vote::name, outputs, combiner.weights);
  // votes[..., c]: the weight of the members predicting class c.
  torch::Tensor votes;
  for (std::size_t i = 0; i < in.outputs.size(); ++i) {
    const auto& output = in.outputs[i];
    const auto predicted = kind == output_kind::class_scores ? output.argmax(-1) : output.gt(0).to(torch::kLong);
    const auto classes = kind == output_kind::class_scores ? output.size(-1) : 2;
    const auto one_hot = torch::one_hot(predicted, classes).to(torch::kDouble);
    // The raw weights, as numpy's bincount adds them: normalizing first could turn a tie into a
    // win by rounding.
    const double weight = combiner.weights.empty() ? 1.0 : combiner.weights[i];
    if (i == 0) {
      votes = one_hot * weight;
    } else {
      votes.add_(one_hot, weight);
    }
  }
  return votes.argmax(-1);  // the first of equal maxima: the lowest class
}

KILN_DECL torch::Tensor combine(const rank_mean& combiner, std::span<const torch::Tensor> outputs, output_kind kind) {
  auto in = detail::ensemble_inputs_of(rank_mean::name, outputs, combiner.weights);
  const auto& first = in.outputs.front();
  const bool two_class_scores = kind == output_kind::class_scores && first.dim() == 2 && first.size(1) == 2;
  const bool one_score = kind != output_kind::class_scores && (first.dim() == 1 || (first.dim() == 2 && first.size(1) == 1));
  if (!two_class_scores && !one_score) {
    throw std::invalid_argument(detail::concat(
        "kiln::ensemble::rank_mean: ranks need one score per sample (a binary logit [N] or [N, 1], the two class "
        "scores [N, 2] of a binary classifier, or a value), got ",
        detail::describe(outputs.front()), " of ",
        kind == output_kind::class_scores ? "class scores" : kind == output_kind::binary_logits ? "logits" : "values"));
  }
  std::vector<torch::Tensor> ranks;
  const auto n = static_cast<double>(first.size(0));
  for (const auto& output : in.outputs) {
    // Class 1's probability rises with the difference of the two logits: the same order.
    const auto score = two_class_scores ? output.select(1, 1) - output.select(1, 0) : output.reshape({-1});
    ranks.push_back(detail::average_ranks(score) / n);
  }
  return detail::weighted_sum(ranks, in.weights);
}

}  // namespace kiln::ensemble

#endif  // KILN_FUNCTION_DEFINITIONS
