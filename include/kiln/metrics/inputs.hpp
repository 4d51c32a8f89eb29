// kiln/metrics/inputs.hpp — what classification metrics take, and how they read it.
//
// Every classification metric reads the model's output and the batch's target the same way:
//
//   output [N, C], C >= 2   class scores (logits or probabilities); the predicted class is the
//                           argmax, the first one among equal scores (as torch.argmax)
//   output [N] or [N, 1]    one logit of a binary classifier; the predicted class is 1 where
//                           the logit is > 0, that is where sigmoid(logit) > 0.5
//   target [N] or [N, 1]    class indices in [0, C) (C = 2 for a single logit), of any dtype:
//                           the float 0/1 targets of kiln::bce_with_logits are read as classes
//
// Shapes are checked on the host where a batch enters (no synchronisation: shapes live on the
// host); the values of targets are not, since reading them would synchronise with the device.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/detail/name_chars.hpp>

#include <torch/types.h>

#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace kiln {

/// How a per-class score becomes one number, as scikit-learn's `average=`:
///   binary    the positive class (1) of a binary classifier
///   micro     counts pooled over classes before dividing
///   macro     unweighted mean over classes
///   weighted  mean over classes weighted by their support (number of true samples)
///
///   kiln::f1<kiln::average::macro>   // reported as "f1_macro"
enum class average { binary, micro, macro, weighted };

namespace detail {

/// "", "_micro", "_macro" or "_weighted": the part of a metric's name that names its average.
template <average A>
constexpr auto average_suffix() {
  if constexpr (A == average::binary) return name_chars("");
  else if constexpr (A == average::micro) return name_chars("_micro");
  else if constexpr (A == average::macro) return name_chars("_macro");
  else return name_chars("_weighted");
}

/// Throws std::invalid_argument("kiln metric '<metric>': <what>").
template <class... Parts>
[[noreturn]] void metric_error(std::string_view metric, const Parts&... what) {
  throw std::invalid_argument(concat("kiln metric '", metric, "': ", what...));
}

/// True for a single-logit output: [N] or [N, 1].
inline bool is_single_logit(const torch::Tensor& output) {
  return output.dim() == 1 || (output.dim() == 2 && output.size(1) == 1);
}

/// Number of classes an output describes (2 for a single logit); throws for any other shape.
KILN_DECL std::int64_t classes_of(std::string_view metric, const torch::Tensor& output);

/// The predicted class of each row, as int64 [N].
inline torch::Tensor predicted_classes(const torch::Tensor& output) {
  if (is_single_logit(output)) return output.reshape({-1}).gt(0).to(torch::kLong);
  return output.argmax(1);
}

/// The target classes as int64 [N], after checking that there is one per output row.
KILN_DECL torch::Tensor target_classes(std::string_view metric, const torch::Tensor& output,
                                       const torch::Tensor& target);

/// Checks that a later batch has as many classes as the first of the pass.
KILN_DECL void check_same_classes(std::string_view metric, std::int64_t first, std::int64_t now);

/// Throws std::logic_error when a metric is computed before it has seen a sample.
inline void check_seen(std::string_view metric, bool seen) {
  if (!seen) throw std::logic_error(concat("kiln metric '", metric, "': computed before any sample was seen"));
}

}  // namespace detail
}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::int64_t classes_of(std::string_view metric, const torch::Tensor& output) {
  if (is_single_logit(output)) return 2;
  if (output.dim() == 2) return output.size(1);
  metric_error(metric, "the output must be class scores [N, C] or a binary classifier's logits [N] or [N, 1], got ",
               output.sizes());
}

KILN_DECL torch::Tensor target_classes(std::string_view metric, const torch::Tensor& output,
                                       const torch::Tensor& target) {
  const bool one_per_row = (target.dim() == 1 || (target.dim() == 2 && target.size(1) == 1)) &&
                           target.size(0) == output.size(0);
  if (!one_per_row) {
    metric_error(metric, "the target must hold one class index per output row ([N] or [N, 1]); output ",
                 output.sizes(), ", target ", target.sizes());
  }
  return target.reshape({-1}).to(torch::kLong);
}

KILN_DECL void check_same_classes(std::string_view metric, std::int64_t first, std::int64_t now) {
  if (first != now) {
    metric_error(metric, "the first batch of this pass had ", first, " classes, this one has ", now,
                 "; every batch of a pass must have the same number of classes");
  }
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
