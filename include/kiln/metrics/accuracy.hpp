// kiln/metrics/accuracy.hpp — accuracy and top-k accuracy.
//
//   kiln::accuracy           fraction of samples whose predicted class is the target; any
//                            classifier (class scores [N, C] or one binary logit [N])
//   kiln::top_k_accuracy<K>  fraction whose target is among the K highest-scoring classes;
//                            for many classes (K = 5 of 1000), where top-1 is too harsh
//
// Inputs are read as kiln/metrics/inputs.hpp describes. Both keep a count on the device and
// read it once, in compute(); the number of samples is counted on the host from batch shapes.
// Values equal scikit-learn's accuracy_score(y, y_pred) and top_k_accuracy_score(y, scores, k=K,
// labels=range(C)) (tests/metrics/accuracy.cpp checks it).
#pragma once

#include <kiln/core/processes.hpp>
#include <kiln/metrics/inputs.hpp>
#include <kiln/detail/name_chars.hpp>

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {

namespace detail {
/// Samples whose prediction was right, summed on the device; samples seen, counted on the host.
class hit_count {
 public:
  void reset(const torch::Device& device) {
    hits_ = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kLong));
    total_ = 0;
  }
  void add(const torch::Tensor& hits) {
    hits_.add_(hits.sum());
    total_ += hits.size(0);
  }
  /// The hits and samples of all the processes (kiln/core/processes.hpp).
  void reduce(processes& group) {
    group.sum_into(hits_);
    total_ = group.sum(total_);
  }
  [[nodiscard]] double fraction(std::string_view metric) const {
    check_seen(metric, total_ > 0);
    return static_cast<double>(hits_.item<std::int64_t>()) / static_cast<double>(total_);
  }

 private:
  torch::Tensor hits_;
  std::int64_t total_ = 0;
};
}  // namespace detail

/// Fraction of samples whose predicted class (argmax, or logit > 0) is the target class.
///
///   kiln::metrics<kiln::accuracy>{}   // reported as "val/accuracy"
struct accuracy {
  static constexpr std::string_view name = "accuracy";

  void reset(const torch::Device& device) { count_.reset(device); }
  void update(const torch::Tensor& output, const torch::Tensor& target) {
    detail::classes_of(name, output);
    count_.add(detail::predicted_classes(output).eq(detail::target_classes(name, output, target)));
  }
  [[nodiscard]] double compute() const { return count_.fraction(name); }
  void reduce(processes& group) { count_.reduce(group); }

 private:
  detail::hit_count count_;
};

/// Fraction of samples whose target is among the K classes with the highest scores. Output:
/// class scores [N, C]. Equal scores rank as in scikit-learn's top_k_accuracy_score: the higher
/// class index first. So a sample is a hit when fewer than K classes beat its target, where a
/// class beats it with a higher score, or an equal score and a higher index. (kiln::accuracy
/// takes the first of equal maxima, as torch.argmax: the two can differ only on such rows.)
/// With K >= C every sample is a hit and the value is 1, as scikit-learn (which warns).
///
///   kiln::metrics<kiln::top_k_accuracy<5>>{}   // reported as "val/top5_accuracy"
template <std::size_t K>
struct top_k_accuracy {
  static_assert(K >= 1, "kiln::top_k_accuracy<K>: K must be at least 1 (top_k_accuracy<1> is accuracy).");
  static constexpr std::string_view name =
      detail::static_name<detail::name_chars("top") + detail::decimal<K>() + detail::name_chars("_accuracy")>;

  void reset(const torch::Device& device) {
    count_.reset(device);
    class_index_ = torch::Tensor{};
  }
  void update(const torch::Tensor& output, const torch::Tensor& target) {
    if (output.dim() != 2 || output.size(1) < 2) {
      detail::metric_error(name, "the output must be class scores [N, C] with C >= 2, got ", output.sizes());
    }
    const auto truth = detail::target_classes(name, output, target);
    if (!class_index_.defined() || class_index_.size(1) != output.size(1)) {
      class_index_ = torch::arange(output.size(1), torch::TensorOptions(output.device()).dtype(torch::kLong)).unsqueeze(0);
    }
    const auto column = truth.unsqueeze(1);
    const auto target_score = output.gather(1, column);
    const auto beaten_by = output.gt(target_score) | (output.eq(target_score) & class_index_.gt(column));
    count_.add(beaten_by.sum(1).lt(static_cast<std::int64_t>(K)));
  }
  [[nodiscard]] double compute() const { return count_.fraction(name); }
  void reduce(processes& group) { count_.reduce(group); }

 private:
  detail::hit_count count_;
  torch::Tensor class_index_;  // [1, C]: 0 .. C-1, made once per pass
};

}  // namespace kiln
