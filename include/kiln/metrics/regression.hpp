// kiln/metrics/regression.hpp — regression metrics.
//
//   kiln::mean_absolute_error      "mae": mean |y − ŷ|; in the target's units, robust to outliers
//   kiln::mean_squared_error       "mse": mean (y − ŷ)²; what a squared loss minimises
//   kiln::root_mean_squared_error  "rmse": √mse, back in the target's units
//   kiln::r2_score                 "r2": 1 − Σ(y − ŷ)² / Σ(y − ȳ)², the fraction of the target's
//                                  variance explained; 1 is perfect, 0 is predicting the mean
//
// Output and target: [N] (or [N, 1]) for one value per sample, [N, D] for D outputs; with D > 1
// each metric is the mean of its D per-output values (scikit-learn's "uniform_average").
//
// State, on the device in float64, per output: Σ|e| and Σe²; for r2 also Σ(y − s) and
// Σ(y − s)² of the target about a shift s, the mean of the first batch of the pass, and the
// target's smallest and largest value. Then Σ(y − ȳ)² = Σ(y − s)² − (Σ(y − s))²/n subtracts
// numbers of similar size only when s is far from ȳ, which the first batch's mean is not: where
// Σy² − (Σy)²/n loses every digit to a target mean far from 0, this keeps all but one or two.
// (Chan et al.'s merge of batch means and deviations does not: its error is of first order in the
// rounding of the means.) All of it is sums, reducible across processes that share s. The
// sample count is kept on the host. Values equal scikit-learn's mean_absolute_error, mean_squared_error (squared=True and
// False) and r2_score (tests/metrics/regression.cpp checks it), including where r2 is not
// well defined:
//   - fewer than two samples: nan (scikit-learn warns and returns nan);
//   - a constant target: 1 if every prediction is exact, else 0 (scikit-learn's default,
//     force_finite=True). kiln knows a target is constant from its smallest and largest value,
//     so it is 0 or 1 even where rounding leaves scikit-learn's Σ(y − ȳ)² a tiny nonzero number.
#pragma once

#include <kiln/detail/linkage.hpp>
#include <kiln/core/processes.hpp>
#include <kiln/metrics/inputs.hpp>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {
namespace detail {

enum class regression_score { mae, mse, rmse, r2 };

template <regression_score S>
constexpr std::string_view regression_score_name() {
  if constexpr (S == regression_score::mae) return "mae";
  else if constexpr (S == regression_score::mse) return "mse";
  else if constexpr (S == regression_score::rmse) return "rmse";
  else return "r2";
}

/// (output, target) as float64 [N, D], after checking that they match.
KILN_DECL std::pair<torch::Tensor, torch::Tensor> regression_pair(std::string_view metric, const torch::Tensor& output,
                                                                  const torch::Tensor& target);

/// MAE, MSE, RMSE or R²; the public names are the aliases below.
template <regression_score S>
class regression_metric {
 public:
  static constexpr std::string_view name = regression_score_name<S>();

  void reset(const torch::Device& device) {
    device_ = device;
    samples_ = 0;
    error_sum_ = torch::Tensor{};
  }

  void update(const torch::Tensor& output, const torch::Tensor& target) {
    const auto [predicted, actual] = regression_pair(name, output, target);
    if (samples_ == 0) start(actual.size(1));
    if (error_sum_.size(0) != actual.size(1)) {
      metric_error(name, "the first batch of this pass had ", error_sum_.size(0), " outputs per sample, this one has ",
                   actual.size(1));
    }
    if constexpr (S == regression_score::mae) {
      // |ŷ − y| as max − min: the same number (one rounding of the same difference), and unlike
      // abs every op here runs on the meta device, where tests prove that update() never syncs.
      error_sum_.add_(torch::maximum(predicted, actual).sub_(torch::minimum(predicted, actual)).sum(0));
    } else {
      error_sum_.add_((predicted - actual).square().sum(0));
    }
    if constexpr (S == regression_score::r2) add_target(actual);
    samples_ += actual.size(0);
  }

  /// The sums of all the processes (kiln/core/processes.hpp). r2 keeps its target sums about a
  /// shift of each process's own (its first batch's mean); each process's sums are moved to the
  /// first process's shift s before they are added: with d = s_r − s,
  /// Σ(y − s) = Σ(y − s_r) + n_r·d and Σ(y − s)² = Σ(y − s_r)² + 2d·Σ(y − s_r) + n_r·d².
  void reduce(processes& group) {
    const auto counts = group.all_gather(torch::tensor(samples_, torch::kLong));
    const auto errors = group.all_gather(error_sum_);
    std::vector<torch::Tensor> shifts, sums, squares, lows, highs;
    if constexpr (S == regression_score::r2) {
      shifts = group.all_gather(shift_);
      sums = group.all_gather(target_sum_);
      squares = group.all_gather(target_square_sum_);
      lows = group.all_gather(low_);
      highs = group.all_gather(high_);
    }
    std::int64_t total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      const auto n = counts[r].item<std::int64_t>();
      if (n == 0) continue;
      const auto errors_r = errors[r].to(device_);
      if (total == 0) {
        start(errors_r.size(0));
        if constexpr (S == regression_score::r2) shift_ = shifts[r].to(device_);
      } else if (errors_r.size(0) != error_sum_.size(0)) {
        metric_error(name, "one process saw ", error_sum_.size(0), " outputs per sample, another ", errors_r.size(0));
      }
      error_sum_.add_(errors_r);
      if constexpr (S == regression_score::r2) {
        const auto d = shifts[r].to(device_) - shift_;
        const auto sum_r = sums[r].to(device_);
        target_sum_.add_(sum_r + d * static_cast<double>(n));
        target_square_sum_.add_(squares[r].to(device_) + 2 * d * sum_r + d.square() * static_cast<double>(n));
        low_ = torch::minimum(low_, lows[r].to(device_));
        high_ = torch::maximum(high_, highs[r].to(device_));
      }
      total += n;
    }
    samples_ = total;
  }

  [[nodiscard]] double compute() const {
    check_seen(name, samples_ > 0);
    const auto n = static_cast<double>(samples_);
    torch::Tensor per_output;
    if constexpr (S == regression_score::mae || S == regression_score::mse) {
      per_output = error_sum_ / n;
    } else if constexpr (S == regression_score::rmse) {
      per_output = (error_sum_ / n).sqrt();
    } else {
      if (samples_ < 2) return std::numeric_limits<double>::quiet_NaN();
      // constant target: 1 when every prediction is exact, else 0
      const auto constant = low_.eq(high_);
      const auto deviations = target_square_sum_ - target_sum_.square() / n;  // Σ(y − ȳ)²
      per_output = torch::where(constant, error_sum_.eq(0).to(torch::kDouble), 1 - error_sum_ / deviations);
    }
    return per_output.mean().item<double>();
  }

 private:
  void start(std::int64_t outputs) {
    const auto options = torch::TensorOptions(device_).dtype(torch::kDouble);
    error_sum_ = torch::zeros({outputs}, options);
    if constexpr (S == regression_score::r2) {
      target_sum_ = torch::zeros({outputs}, options);
      target_square_sum_ = torch::zeros({outputs}, options);
      low_ = torch::full({outputs}, std::numeric_limits<double>::infinity(), options);
      high_ = torch::full({outputs}, -std::numeric_limits<double>::infinity(), options);
    }
  }

  void add_target(const torch::Tensor& actual) {
    if (samples_ == 0) shift_ = actual.mean(0);  // on the device: nothing is read back
    const auto shifted = actual - shift_;
    target_sum_.add_(shifted.sum(0));
    target_square_sum_.add_(shifted.square().sum(0));
    low_ = torch::minimum(low_, actual.amin(0));
    high_ = torch::maximum(high_, actual.amax(0));
  }

  torch::Device device_{torch::kCPU};
  std::int64_t samples_ = 0;
  torch::Tensor error_sum_;                      // Σ|e| (mae) or Σe² (the others), per output
  // r2 only, for the target: s, Σ(y − s), Σ(y − s)², min, max
  torch::Tensor shift_, target_sum_, target_square_sum_, low_, high_;
};

}  // namespace detail

/// Mean absolute error.
///
///   kiln::metrics<kiln::mean_absolute_error>{}   // "val/mae"
using mean_absolute_error = detail::regression_metric<detail::regression_score::mae>;

/// Mean squared error.
///
///   kiln::metrics<kiln::mean_squared_error>{}   // "val/mse"
using mean_squared_error = detail::regression_metric<detail::regression_score::mse>;

/// Root of the mean squared error (with D outputs: the mean of the D roots, as scikit-learn).
///
///   kiln::metrics<kiln::root_mean_squared_error>{}   // "val/rmse"
using root_mean_squared_error = detail::regression_metric<detail::regression_score::rmse>;

/// Coefficient of determination R².
///
///   kiln::metrics<kiln::r2_score, kiln::mean_absolute_error>{}   // "val/r2", "val/mae"
using r2_score = detail::regression_metric<detail::regression_score::r2>;

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::pair<torch::Tensor, torch::Tensor> regression_pair(std::string_view metric, const torch::Tensor& output,
                                                                  const torch::Tensor& target) {
  const bool one_per_row = target.dim() == 1 || (target.dim() == 2 && target.size(1) == 1);
  const bool matches = target.dim() >= 1 && target.dim() <= 2 && output.size(0) == target.size(0) &&
                       (one_per_row ? output.numel() == target.size(0) : output.sizes() == target.sizes());
  if (!matches) {
    metric_error(metric, "the output must match the target: [N] or [N, 1] against [N], or [N, D] against [N, D]; got output ",
                 output.sizes(), " and target ", target.sizes());
  }
  const auto rows = target.size(0);
  return {output.reshape({rows, -1}).to(torch::kDouble), target.reshape({rows, -1}).to(torch::kDouble)};
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
