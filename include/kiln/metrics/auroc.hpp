// kiln/metrics/auroc.hpp — metrics of how well scores rank positives above negatives.
//
//   kiln::auroc<A>              area under the ROC curve: the chance that a random positive
//                               scores above a random negative (ties count half); threshold-free,
//                               insensitive to class balance
//   kiln::average_precision<A>  area under the precision–recall curve as a step sum; prefer it
//                               when positives are rare and false alarms are what matters
//
// A is a kiln::average: binary (one logit [N] or [N, 1] of a binary classifier: "auroc",
// "average_precision"), or one-vs-rest over the C columns of class scores [N, C]: macro
// ("auroc_ovr_macro"), weighted by class support ("auroc_ovr_weighted") or micro (all C·N
// one-vs-rest decisions pooled: "auroc_ovr_micro"); average_precision names drop the "ovr_".
// Targets are class indices, read as kiln/metrics/inputs.hpp describes.
//
// State: the scores and targets of each batch, kept on the device (a vector of tensors: the
// only allocations are the tensors' own); everything is computed once, at the end of the pass.
// Values equal scikit-learn's roc_auc_score and average_precision_score
// (tests/metrics/auroc.cpp checks it, ties included):
//   - the curve has one point per distinct score (tied scores move together), the ROC area is
//     the trapezoidal sum, and average precision is Σ (Rₙ − Rₙ₋₁)·Pₙ over those thresholds,
//     without interpolation;
//   - binary scores are ranked as given (logits: sigmoid is monotone, so the value is the one
//     of the probabilities); multi-class scores are logits by default, turned into
//     probabilities by softmax before ranking, as scikit-learn's one-vs-rest AUROC requires
//     probabilities (the value is scikit-learn's on those probabilities as torch rounds them:
//     rows whose probabilities tie in exact arithmetic may not tie after rounding);
//     `.softmax = false` ranks the outputs as given (already probabilities);
//   - AUROC is nan where scikit-learn raises: the targets hold one class only (binary), or a
//     class has no sample or every sample (one-vs-rest macro and weighted);
//   - average precision of a class with no positive sample is 0, scikit-learn's value (which
//     warns); such a class counts in the macro average and weighs 0 in the weighted one.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/core/processes.hpp>
#include <kiln/metrics/inputs.hpp>
#include <kiln/detail/name_chars.hpp>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {
namespace detail {

/// Scores and targets of one pass, batch by batch, on the device.
class stored_scores {
 public:
  void reset() {
    scores_.clear();
    targets_.clear();
    classes_ = 0;
  }
  /// Keeps one batch: scores [N] or [N, C], target classes [N].
  void add(std::string_view metric, torch::Tensor scores, torch::Tensor targets) {
    const std::int64_t classes = scores.dim() == 2 ? scores.size(1) : 2;
    if (!empty()) check_same_classes(metric, classes_, classes);
    classes_ = classes;
    scores_.push_back(std::move(scores));
    targets_.push_back(std::move(targets));
  }
  /// The scores and targets of all the processes, in rank order (kiln/core/processes.hpp).
  void reduce(std::string_view metric, processes& group) {
    const auto own = empty() ? std::pair<torch::Tensor, torch::Tensor>{} : std::pair{torch::cat(scores_), torch::cat(targets_)};
    auto scores = group.all_gather(own.first);
    auto targets = group.all_gather(own.second);
    reset();
    for (std::size_t r = 0; r < scores.size(); ++r) {
      if (scores[r].defined()) add(metric, std::move(scores[r]), std::move(targets[r]));
    }
  }
  [[nodiscard]] bool empty() const noexcept { return scores_.empty(); }
  [[nodiscard]] std::int64_t classes() const noexcept { return classes_; }
  /// All scores (in float64) and targets of the pass, concatenated.
  [[nodiscard]] std::pair<torch::Tensor, torch::Tensor> all() const {
    return {torch::cat(scores_).to(torch::kDouble), torch::cat(targets_)};
  }

 private:
  std::vector<torch::Tensor> scores_, targets_;
  std::int64_t classes_ = 0;
};

/// Cumulative true and false positives at each distinct score, from the highest score down:
/// scikit-learn's binary classification curve. `positive` is 0/1, in float64.
struct binary_curve {
  torch::Tensor true_positives, false_positives;  // float64 [distinct scores], on the CPU

  binary_curve(const torch::Tensor& scores, const torch::Tensor& positive) {
    const auto [sorted, order] = scores.sort(/*dim=*/0, /*descending=*/true);  // ties in any order
    const auto n = scores.size(0);
    // The last position of each run of equal scores is a threshold.
    const auto last_of_run = torch::cat({sorted.slice(0, 1).ne(sorted.slice(0, 0, n - 1)),
                                         torch::ones({1}, sorted.options().dtype(torch::kBool))});
    const auto at = last_of_run.nonzero().squeeze(1);
    true_positives = positive.index_select(0, order).cumsum(0).index_select(0, at).to(torch::kCPU);
    false_positives = at.to(torch::kCPU, torch::kDouble).add(1).sub(true_positives);
  }
};

/// Binary AUROC; nan when `positive` holds one class only.
KILN_DECL double binary_auroc(const torch::Tensor& scores, const torch::Tensor& positive);

/// Binary average precision; 0 when `positive` holds no positive.
KILN_DECL double binary_average_precision(const torch::Tensor& scores, const torch::Tensor& positive);

enum class curve_score { auroc, average_precision };

template <curve_score S, average A>
constexpr auto curve_metric_name() {
  constexpr auto base = [] {
    if constexpr (S == curve_score::auroc) return name_chars("auroc");
    else return name_chars("average_precision");
  }();
  if constexpr (A == average::binary || S == curve_score::average_precision) return base + average_suffix<A>();
  else return base + name_chars("_ovr") + average_suffix<A>();
}

/// AUROC or average precision with average A; the public names are the aliases below.
template <curve_score S, average A>
struct curve_metric {
  static constexpr std::string_view name = static_name<curve_metric_name<S, A>()>;

  bool softmax = true;    ///< multi-class only: rank softmax(output), not the raw output
  stored_scores stored{};  ///< running state (not an option): each batch's scores and targets

  void reset(const torch::Device&) { stored.reset(); }
  void reduce(processes& group) { stored.reduce(name, group); }

  void update(const torch::Tensor& output, const torch::Tensor& target) {
    classes_of(name, output);  // checks the shape
    if constexpr (A == average::binary) {
      if (!is_single_logit(output)) {
        metric_error(name, "average::binary ranks one score per sample (output [N] or [N, 1]), got ",
                     output.sizes(), "; for class scores [N, C] use average::macro, weighted or micro");
      }
      stored.add(name, output.detach().reshape({-1}), target_classes(name, output, target));
    } else {
      if (is_single_logit(output)) {
        metric_error(name, "one-vs-rest averaging needs class scores [N, C], got ", output.sizes(),
                     "; for a binary classifier's logit use average::binary");
      }
      stored.add(name, softmax ? output.detach().softmax(1) : output.detach(), target_classes(name, output, target));
    }
  }

  [[nodiscard]] double compute() const {
    check_seen(name, !stored.empty());
    const auto [scores, targets] = stored.all();
    if constexpr (A == average::binary) {
      return score(scores, targets.eq(1).to(torch::kDouble));
    } else {
      const std::int64_t classes = stored.classes();
      const auto one_hot = targets.unsqueeze(1).eq(torch::arange(classes, targets.options())).to(torch::kDouble);
      if constexpr (A == average::micro) {
        return score(scores.reshape({-1}), one_hot.reshape({-1}));
      } else {
        const auto support = one_hot.sum(0).to(torch::kCPU);
        double sum = 0, weights = 0;
        for (std::int64_t c = 0; c < classes; ++c) {
          const double weight = A == average::weighted ? support[c].item<double>() : 1.0;
          const double value = score(scores.select(1, c), one_hot.select(1, c));
          if constexpr (S == curve_score::auroc) {
            if (std::isnan(value)) return value;  // a class with no sample, or every sample
          }
          sum += weight * value;
          weights += weight;
        }
        return sum / weights;
      }
    }
  }

 private:
  static double score(const torch::Tensor& scores, const torch::Tensor& positive) {
    if constexpr (S == curve_score::auroc) return binary_auroc(scores, positive);
    else return binary_average_precision(scores, positive);
  }
};

}  // namespace detail

/// Area under the ROC curve, ties as scikit-learn's roc_auc_score.
///
///   kiln::metrics<kiln::auroc<kiln::average::binary>>{}   // "val/auroc"; one logit per sample
///   kiln::metrics<kiln::auroc<kiln::average::macro>>{}    // "val/auroc_ovr_macro"; logits [N, C]
template <average A>
using auroc = detail::curve_metric<detail::curve_score::auroc, A>;

/// Average precision, scikit-learn's average_precision_score (step sum, no interpolation).
///
///   kiln::metrics<kiln::average_precision<kiln::average::binary>>{}     // "val/average_precision"
///   kiln::metrics<kiln::average_precision<kiln::average::weighted>>{}   // "val/average_precision_weighted"
template <average A>
using average_precision = detail::curve_metric<detail::curve_score::average_precision, A>;

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL double binary_auroc(const torch::Tensor& scores, const torch::Tensor& positive) {
  const binary_curve curve{scores, positive};
  const auto tp = curve.true_positives.accessor<double, 1>();
  const auto fp = curve.false_positives.accessor<double, 1>();
  const auto last = tp.size(0) - 1;
  const double positives = tp[last], negatives = fp[last];
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  double area = 0, tpr = 0, fpr = 0;  // the curve starts at (0, 0)
  for (std::int64_t i = 0; i <= last; ++i) {
    const double next_tpr = tp[i] / positives, next_fpr = fp[i] / negatives;
    area += (next_fpr - fpr) * (next_tpr + tpr) / 2;
    tpr = next_tpr;
    fpr = next_fpr;
  }
  return area;
}

KILN_DECL double binary_average_precision(const torch::Tensor& scores, const torch::Tensor& positive) {
  const binary_curve curve{scores, positive};
  const auto tp = curve.true_positives.accessor<double, 1>();
  const auto fp = curve.false_positives.accessor<double, 1>();
  const double positives = tp[tp.size(0) - 1];
  if (positives == 0) return 0.0;
  double sum = 0, recall = 0;
  for (std::int64_t i = 0; i < tp.size(0); ++i) {
    const double next_recall = tp[i] / positives;
    sum += (next_recall - recall) * (tp[i] / (tp[i] + fp[i]));
    recall = next_recall;
  }
  return sum;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
