// kiln/metrics/classification.hpp — metrics counted from the confusion matrix.
//
//   kiln::confusion_matrix     the C×C table of (true class, predicted class) counts
//   kiln::precision<A>         of the samples predicted as a class, the fraction that are
//   kiln::recall<A>            of the samples of a class, the fraction predicted as it
//   kiln::f1<A>                harmonic mean of precision and recall: one number that punishes
//                              a classifier for neglecting either
//   kiln::fbeta<A>{.beta = b}  F1 with recall weighted b times as much as precision (b = 2:
//                              missing a positive costs more than a false alarm)
//
// A is a kiln::average: binary (class 1 of a binary classifier: "f1"), micro ("f1_micro"),
// macro ("f1_macro": every class counts the same, whatever its size) or weighted
// ("f1_weighted": classes count by their support). Inputs are read as kiln/metrics/inputs.hpp
// describes.
//
// State: the confusion matrix, C×C int64 on the device, added to once per batch by one
// index_add_ (no synchronisation; exact; reducible across processes by summing). compute()
// reads it once and divides on the host. Values equal scikit-learn's
// precision_recall_fscore_support(y, y_pred, average=..., beta=..., zero_division=...) with its
// default labels (tests/metrics/classification.cpp checks it), which means:
//   - macro and weighted average over the classes present in the targets or the predictions;
//     a class that appears in neither (a column of the output nobody chose) is left out;
//   - a ratio whose denominator is 0 (precision of a class never predicted, recall of a class
//     never true) is `zero_division`: 0 by default (scikit-learn's default, which also warns),
//     or 1; an F-score whose precision and recall are both 0 is 0;
//   - micro precision, recall and F are all the accuracy (every sample is predicted as one
//     class).
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/core/processes.hpp>
#include <kiln/metrics/inputs.hpp>
#include <kiln/detail/name_chars.hpp>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln {
namespace detail {

/// The confusion matrix of one pass, on the device: cell (t, p) counts samples of true class t
/// predicted as p.
class class_counts {
 public:
  void reset(const torch::Device& device) {
    device_ = device;
    cells_ = torch::Tensor{};
    classes_ = 0;
  }

  void add(std::string_view metric, const torch::Tensor& output, const torch::Tensor& target) {
    const std::int64_t classes = classes_of(metric, output);
    if (!cells_.defined()) {
      classes_ = classes;
      cells_ = torch::zeros({classes * classes}, torch::TensorOptions(device_).dtype(torch::kLong));
    }
    check_same_classes(metric, classes_, classes);
    const auto cell = target_classes(metric, output, target).mul(classes).add_(predicted_classes(output));
    // index_add_, not bincount: on CUDA bincount reads the largest index back to the host.
    cells_.index_add_(0, cell, torch::ones_like(cell));
  }

  [[nodiscard]] std::int64_t classes() const noexcept { return classes_; }

  /// The counts of all the processes (kiln/core/processes.hpp); a process that saw no sample
  /// takes the others' classes.
  void reduce(std::string_view metric, processes& group) {
    std::int64_t classes = classes_;
    for (const auto& each : group.all_gather(torch::tensor(classes_, torch::kLong))) {
      const auto theirs = each.item<std::int64_t>();
      if (theirs == 0) continue;
      if (classes == 0) classes = theirs;
      check_same_classes(metric, classes, theirs);
    }
    group.sum_into(cells_);
    classes_ = classes;
  }

  /// The C×C matrix, on the CPU (this reads it from the device).
  [[nodiscard]] torch::Tensor matrix(std::string_view metric) const {
    check_seen(metric, cells_.defined());
    return cells_.view({classes_, classes_}).to(torch::kCPU);
  }

 private:
  torch::Device device_{torch::kCPU};
  torch::Tensor cells_;  // C*C, flattened
  std::int64_t classes_ = 0;
};

enum class set_score { precision, recall, f1, fbeta };

template <set_score S>
constexpr auto set_score_name() {
  if constexpr (S == set_score::precision) return name_chars("precision");
  else if constexpr (S == set_score::recall) return name_chars("recall");
  else if constexpr (S == set_score::f1) return name_chars("f1");
  else return name_chars("fbeta");
}

/// Per-class counts read off a confusion matrix.
struct class_totals {
  double true_positives, predicted, actual;  // tp, tp + fp, tp + fn
};

/// Precision, recall or F-beta of one class (or of pooled counts), scikit-learn's way.
KILN_DECL double set_score_of(set_score score, const class_totals& c, double beta, double zero_division);

KILN_DECL double averaged_set_score(set_score score, average a, const torch::Tensor& matrix, double beta,
                                    double zero_division);

/// Precision, recall, F1 or F-beta with average A; the public names are the aliases below.
template <set_score S, average A>
struct set_metric {
  static constexpr std::string_view name = static_name<set_score_name<S>() + average_suffix<A>()>;

  double beta = 1.0;           ///< F-beta only: recall counts beta times as much as precision
  double zero_division = 0.0;  ///< value of a ratio whose denominator is 0: 0 or 1
  class_counts counts{};       ///< running state (not an option): the confusion matrix

  void validate() const {
    if constexpr (S == set_score::fbeta) {
      check_non_negative(concat("kiln::fbeta (", name, ")"), "beta", beta);
    } else {
      check_option(beta == 1.0, concat("kiln::", set_score_name<S>().view(), " (", name, ")"), "beta",
                   "left at 1 (it applies to kiln::fbeta only)", beta);
    }
    check_option(zero_division == 0.0 || zero_division == 1.0, concat("kiln metric '", name, "'"),
                 "zero_division", "0 or 1", zero_division);
  }
  void reset(const torch::Device& device) {
    validate();
    counts.reset(device);
  }
  void update(const torch::Tensor& output, const torch::Tensor& target) {
    if constexpr (A == average::binary) {
      if (classes_of(name, output) != 2) {
        metric_error(name, "average::binary needs a binary classifier (output [N], [N, 1] or [N, 2]), got ",
                     output.sizes(), "; use average::macro, micro or weighted for more classes");
      }
    }
    counts.add(name, output, target);
  }
  void reduce(processes& group) { counts.reduce(name, group); }
  [[nodiscard]] double compute() const {
    return averaged_set_score(S, A, counts.matrix(name), beta, zero_division);
  }
};

}  // namespace detail

/// Rows: true class; columns: predicted class (scikit-learn's confusion_matrix with
/// labels = 0 .. C-1). compute() returns the C×C int64 table on the CPU; in a pipeline each cell
/// is reported as "val/confusion_matrix[t,p]".
///
///   kiln::metrics<kiln::confusion_matrix>{}
///   ctx.metrics.at("val/confusion_matrix[3,5]")   // threes taken for fives
struct confusion_matrix {
  static constexpr std::string_view name = "confusion_matrix";

  void reset(const torch::Device& device) { counts_.reset(device); }
  void update(const torch::Tensor& output, const torch::Tensor& target) { counts_.add(name, output, target); }
  [[nodiscard]] torch::Tensor compute() const { return counts_.matrix(name); }
  void reduce(processes& group) { counts_.reduce(name, group); }

 private:
  detail::class_counts counts_;
};

/// tp / (tp + fp): of the samples predicted as a class, the fraction that are.
///
///   kiln::metrics<kiln::precision<kiln::average::macro>>{}   // "val/precision_macro"
template <average A>
using precision = detail::set_metric<detail::set_score::precision, A>;

/// tp / (tp + fn): of the samples of a class, the fraction predicted as it.
///
///   kiln::metrics<kiln::recall<kiln::average::weighted>>{}   // "val/recall_weighted"
template <average A>
using recall = detail::set_metric<detail::set_score::recall, A>;

/// 2·precision·recall / (precision + recall).
///
///   kiln::metrics<kiln::f1<kiln::average::binary>>{}   // "val/f1", class 1 of a binary classifier
///   kiln::metrics<kiln::f1<kiln::average::macro>>{}    // "val/f1_macro"
template <average A>
using f1 = detail::set_metric<detail::set_score::f1, A>;

/// (1 + β²)·precision·recall / (β²·precision + recall); `.beta` is a runtime option (default 1).
/// The name does not carry β: a list can hold one fbeta per average.
///
///   kiln::metrics{kiln::fbeta<kiln::average::macro>{.beta = 2}}   // "val/fbeta_macro"
template <average A>
using fbeta = detail::set_metric<detail::set_score::fbeta, A>;

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL double set_score_of(set_score score, const class_totals& c, double beta, double zero_division) {
  const double precision = c.predicted > 0 ? c.true_positives / c.predicted : zero_division;
  const double recall = c.actual > 0 ? c.true_positives / c.actual : zero_division;
  if (score == set_score::precision) return precision;
  if (score == set_score::recall) return recall;
  const double beta2 = beta * beta;
  const double denominator = beta2 * precision + recall;
  return denominator > 0 ? (1 + beta2) * precision * recall / denominator : 0.0;
}

KILN_DECL double averaged_set_score(set_score score, average a, const torch::Tensor& matrix, double beta,
                                    double zero_division) {
  const auto m = matrix.accessor<std::int64_t, 2>();
  const std::int64_t classes = matrix.size(0);
  std::vector<class_totals> per_class(static_cast<std::size_t>(classes), class_totals{0, 0, 0});
  for (std::int64_t t = 0; t < classes; ++t) {
    for (std::int64_t p = 0; p < classes; ++p) {
      const auto n = static_cast<double>(m[t][p]);
      per_class[t].actual += n;
      per_class[p].predicted += n;
      if (t == p) per_class[t].true_positives += n;
    }
  }
  if (a == average::binary) return set_score_of(score, per_class[1], beta, zero_division);
  if (a == average::micro) {
    class_totals pooled{0, 0, 0};
    for (const auto& c : per_class) {
      pooled.true_positives += c.true_positives;
      pooled.predicted += c.predicted;
      pooled.actual += c.actual;
    }
    return set_score_of(score, pooled, beta, zero_division);
  }
  double sum = 0, weights = 0;
  for (const auto& c : per_class) {
    if (c.actual == 0 && c.predicted == 0) continue;  // neither true nor predicted: not a label here
    const double weight = a == average::weighted ? c.actual : 1.0;
    sum += weight * set_score_of(score, c, beta, zero_division);
    weights += weight;
  }
  return sum / weights;  // weights > 0: some class is true for the first sample
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
