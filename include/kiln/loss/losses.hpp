// kiln/loss/losses.hpp — loss policies.
//
//   kiln::cross_entropy    classification from logits; class weights, ignore_index, label smoothing
//   kiln::bce_with_logits  binary / multi-label classification from logits; pos_weight
//   kiln::mse              regression, squared error
//   kiln::l1               regression, absolute error
//   kiln::huber            regression, quadratic below delta, linear above
//   kiln::smooth_l1        regression, huber / beta
//   kiln::loss{f}          any callable or torch::nn module taking (output, target)
//
// Each calls the ATen operator that torch.nn.functional calls, so values and gradients are
// PyTorch's. Reduction is the mean over the batch unless `reduction` says otherwise.
//
//   kiln::cross_entropy{.label_smoothing = 0.1}
//   kiln::loss{[](const torch::Tensor& out, const torch::Tensor& y) { return (out - y).abs().max(); }}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <utility>

namespace kiln {

/// A loss policy is called as `loss(output, target)` and returns the loss as a tensor.
template <class L>
concept LossPolicy = requires(L& loss, const torch::Tensor& output, const torch::Tensor& target) {
  { loss(output, target) } -> std::convertible_to<torch::Tensor>;
};

/// How per-sample losses are combined.
enum class reduction : std::int64_t { none = 0, mean = 1, sum = 2 };

namespace detail {
// ATen's own reduction codes (at::Reduction::None/Mean/Sum) are 0, 1, 2 in 1.13 and 2.x.
constexpr std::int64_t aten_reduction(kiln::reduction r) noexcept { return static_cast<std::int64_t>(r); }

// Moves an optional tensor option to the device the model runs on.
inline void move_option(torch::Tensor& t, const torch::Device& device) {
  if (t.defined()) t = t.to(device);
}
}  // namespace detail

/// Cross-entropy from logits, as torch.nn.CrossEntropyLoss: class-index targets (int64, shape
/// [N]) or class-probability targets (float, shape [N, C]).
struct cross_entropy {
  using kiln_role = role::loss;
  torch::Tensor weight{};  ///< per-class weights [C]; undefined = all 1
  double label_smoothing = 0.0;
  std::int64_t ignore_index = -100;
  kiln::reduction reduction = kiln::reduction::mean;

  void validate() const {
    detail::check_in_range("kiln::cross_entropy", "label_smoothing", label_smoothing, 0.0, 1.0);
    detail::check_option(!weight.defined() || weight.dim() == 1, "kiln::cross_entropy", "weight",
                         "a 1-D tensor with one weight per class", weight.sizes());
  }
  void to(const torch::Device& device) { detail::move_option(weight, device); }

  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    return torch::cross_entropy_loss(output, target, weight, detail::aten_reduction(reduction),
                                     ignore_index, label_smoothing);
  }
};

/// Binary cross-entropy from logits, as torch.nn.BCEWithLogitsLoss.
struct bce_with_logits {
  using kiln_role = role::loss;
  torch::Tensor weight{};      ///< per-element rescaling; undefined = 1
  torch::Tensor pos_weight{};  ///< weight of positive examples per class; undefined = 1
  kiln::reduction reduction = kiln::reduction::mean;

  void to(const torch::Device& device) {
    detail::move_option(weight, device);
    detail::move_option(pos_weight, device);
  }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    return torch::binary_cross_entropy_with_logits(output, target, weight, pos_weight,
                                                   detail::aten_reduction(reduction));
  }
};

/// Mean squared error, as torch.nn.MSELoss.
struct mse {
  using kiln_role = role::loss;
  kiln::reduction reduction = kiln::reduction::mean;
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    return torch::mse_loss(output, target, detail::aten_reduction(reduction));
  }
};

/// Mean absolute error, as torch.nn.L1Loss.
struct l1 {
  using kiln_role = role::loss;
  kiln::reduction reduction = kiln::reduction::mean;
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    return torch::l1_loss(output, target, detail::aten_reduction(reduction));
  }
};

/// Huber loss, as torch.nn.HuberLoss: 0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta).
struct huber {
  using kiln_role = role::loss;
  double delta = 1.0;
  kiln::reduction reduction = kiln::reduction::mean;
  void validate() const { detail::check_positive("kiln::huber", "delta", delta); }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    return torch::huber_loss(output, target, detail::aten_reduction(reduction), delta);
  }
};

/// Smooth L1 loss, as torch.nn.SmoothL1Loss (huber divided by beta).
struct smooth_l1 {
  using kiln_role = role::loss;
  double beta = 1.0;
  kiln::reduction reduction = kiln::reduction::mean;
  void validate() const { detail::check_non_negative("kiln::smooth_l1", "beta", beta); }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    return torch::smooth_l1_loss(output, target, detail::aten_reduction(reduction), beta);
  }
};

/// Any callable, or torch::nn module, that maps (output, target) to a loss tensor.
///   kiln::loss{torch::nn::MSELoss{}}
template <class F>
struct loss {
  static_assert(requires(F& f, const torch::Tensor& a, const torch::Tensor& b) {
    { f(a, b) } -> std::convertible_to<torch::Tensor>;
  }, "kiln::loss{f}: f must be callable as f(output, target) with two torch::Tensor and return "
     "a torch::Tensor; check its parameter list (its type is the F of the 'kiln::loss<F>' named in "
     "the instantiation note).");
  using kiln_role = role::loss;
  F function;
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) {
    return function(output, target);
  }
};
template <class F>
loss(F) -> loss<F>;

}  // namespace kiln
