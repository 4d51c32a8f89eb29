// kiln/metrics/accuracy.hpp — classification accuracy.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace kiln {

/// Fraction of samples whose highest-scoring class is the target class.
/// Output: logits or probabilities [N, C]; target: class indices [N].
///
///   kiln::metrics<kiln::accuracy>{}   // reported as "val/accuracy"
struct accuracy {
  static constexpr std::string_view name = "accuracy";

  void reset(const torch::Device& device) {
    correct_ = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kLong));
    total_ = 0;
  }
  void update(const torch::Tensor& output, const torch::Tensor& target) {
    correct_.add_(output.argmax(1).eq(target).sum());
    total_ += target.size(0);
  }
  [[nodiscard]] double compute() const {
    if (total_ == 0) throw std::logic_error("kiln::accuracy: computed before any sample was seen");
    return static_cast<double>(correct_.item<std::int64_t>()) / static_cast<double>(total_);
  }

 private:
  torch::Tensor correct_;
  std::int64_t total_ = 0;  // counted on the host: batch sizes are known without a sync
};

}  // namespace kiln
