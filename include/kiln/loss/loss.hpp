// kiln/loss/loss.hpp — what a loss policy is, and what the built-in losses share.
//
// A loss policy is called as `loss(output, target)` and returns the loss as a tensor; the
// trainer calls backward() on it, so in a pipeline it must be a scalar. The built-in losses
// have a `reduction`; they reject reduction::none when a trainer is built with them (it gives
// one loss per element: useful when calling the loss directly, not for training).
#pragma once

#include <kiln/detail/check.hpp>

#include <torch/types.h>

#include <array>
#include <concepts>
#include <cstdint>
#include <string_view>
#include <utility>

namespace kiln {

/// A loss policy is called as `loss(output, target)` and returns the loss as a tensor.
template <class L>
concept LossPolicy = requires(L& loss, const torch::Tensor& output, const torch::Tensor& target) {
  { loss(output, target) } -> std::convertible_to<torch::Tensor>;
};

/// How per-sample losses are combined.
enum class reduction : std::int64_t { none = 0, mean = 1, sum = 2 };

/// The names of the reductions, as kiln::config reads and writes them.
constexpr std::array<std::pair<std::string_view, reduction>, 3> enum_names(reduction) noexcept {
  return {{{"none", reduction::none}, {"mean", reduction::mean}, {"sum", reduction::sum}}};
}

namespace detail {
// ATen's own reduction codes (at::Reduction::None/Mean/Sum) are 0, 1, 2 in 1.13 and 2.x.
constexpr std::int64_t aten_reduction(kiln::reduction r) noexcept { return static_cast<std::int64_t>(r); }

// Moves an optional tensor option to the device the model runs on.
inline void move_option(torch::Tensor& t, const torch::Device& device) {
  if (t.defined()) t = t.to(device);
}

// A trainer needs one number to call backward() on.
inline void check_trainable(std::string_view where, kiln::reduction r) {
  check_option(r != kiln::reduction::none, where, "reduction",
               "mean or sum to train a pipeline (none gives one loss per element, for calling the loss "
               "directly)",
               "none");
}

// Applies a mean or sum reduction, or none, to per-element losses.
inline torch::Tensor reduce(const torch::Tensor& losses, kiln::reduction r) {
  switch (r) {
    case kiln::reduction::mean: return losses.mean();
    case kiln::reduction::sum: return losses.sum();
    case kiln::reduction::none: break;
  }
  return losses;
}
}  // namespace detail

}  // namespace kiln
