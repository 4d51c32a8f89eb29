// kiln/loss/losses.hpp — loss policies.
//
//   kiln::cross_entropy        classification from logits; class weights, ignore_index, label smoothing
//   kiln::sigmoid_focal_loss   dense detection / imbalanced binary or multi-label, as torchvision's
//   kiln::softmax_focal_loss   imbalanced multi-class classification; per-class alpha
//   kiln::bce_with_logits      binary / multi-label classification from logits; pos_weight
//   kiln::mse                  regression, squared error
//   kiln::l1                   regression, absolute error
//   kiln::huber                regression, quadratic below delta, linear above
//   kiln::smooth_l1            regression, huber / beta
//   kiln::loss{f}              any callable or torch::nn module taking (output, target)
//
// Each calls the ATen operators that torch.nn.functional (or torchvision.ops) calls, so values
// and gradients are PyTorch's (tests/loss/ checks them against PyTorch itself). Reduction is the
// mean unless `reduction` says otherwise; reduction::none is for calling a loss directly, and a
// trainer built with it says so (see kiln/loss/loss.hpp). Each names its runtime options in
// `each_option`, so that kiln::config can set them ("loss.label_smoothing").
//
//   kiln::cross_entropy{.label_smoothing = 0.1}
//   kiln::sigmoid_focal_loss{.alpha = 0.25, .gamma = 2.0}
//   kiln::loss{[](const torch::Tensor& out, const torch::Tensor& y) { return (out - y).abs().max(); }}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/loss/focal.hpp>
#include <kiln/loss/loss.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <string_view>
#include <utility>

namespace kiln {

/// Cross-entropy from logits, as torch.nn.CrossEntropyLoss: class-index targets (int64, shape
/// [N]) or class-probability targets (float, shape [N, C]).
struct cross_entropy {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::class_scores;
  /// Reads class probabilities as targets: batches mixed by kiln::mixup or kiln::cutmix.
  static constexpr bool takes_class_probabilities = true;
  torch::Tensor weight{};  ///< per-class weights [C]; undefined = all 1
  double label_smoothing = 0.0;
  std::int64_t ignore_index = -100;
  kiln::reduction reduction = kiln::reduction::mean;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp); the class weights
  /// are tensors, set in code.
  template <class F>
  void each_option(F&& f) { f("label_smoothing", label_smoothing); f("ignore_index", ignore_index); f("reduction", reduction); }

  void validate() const {
    detail::check_in_range("kiln::cross_entropy", "label_smoothing", label_smoothing, 0.0, 1.0);
    detail::check_trainable("kiln::cross_entropy", reduction);
    detail::check_option(!weight.defined() || weight.dim() == 1, "kiln::cross_entropy", "weight",
                         "a 1-D tensor with one weight per class", weight.sizes());
  }
  void to(const torch::Device& device) { detail::move_option(weight, device); }

  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    constexpr std::string_view name = "kiln::cross_entropy";
    if (!output.is_floating_point() || output.dim() < 1) {
      detail::loss_input_error(name, output, target, "the output must be floating-point logits [N, C] or [N, C, d...]");
    }
    if (!target.is_floating_point()) {
      detail::check_class_indices(name, output, target);
    } else if (target.sizes() != output.sizes()) {
      detail::loss_input_error(name, output, target,
                               detail::concat("float targets are class probabilities and must have the output's "
                                              "shape ", output.sizes(), "; class indices must be int64"));
    }
    if (weight.defined() && weight.size(0) != detail::classes_of(output)) {
      detail::loss_input_error(name, output, target,
                               detail::concat("weight has ", weight.size(0), " entries but the output has ",
                                              detail::classes_of(output), " classes"));
    }
    return detail::explain_errors(name, output, target, [&] {
      return torch::cross_entropy_loss(output, target, weight, detail::aten_reduction(reduction), ignore_index,
                                       label_smoothing);
    });
  }
  /// Class indices in [0, C) or ignore_index (reads the values; see kiln/loss/loss.hpp).
  void check_targets(const torch::Tensor& output, const torch::Tensor& target) const {
    if (!target.is_floating_point()) detail::check_class_range("kiln::cross_entropy", output, target, ignore_index);
  }
};

/// Binary cross-entropy from logits, as torch.nn.BCEWithLogitsLoss.
struct bce_with_logits {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::binary_logits;
  torch::Tensor weight{};      ///< per-element rescaling; undefined = 1
  torch::Tensor pos_weight{};  ///< weight of positive examples per class; undefined = 1
  kiln::reduction reduction = kiln::reduction::mean;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp); the class weights
  /// are tensors, set in code.
  template <class F>
  void each_option(F&& f) { f("reduction", reduction); }

  void validate() const { detail::check_trainable("kiln::bce_with_logits", reduction); }
  void to(const torch::Device& device) {
    detail::move_option(weight, device);
    detail::move_option(pos_weight, device);
  }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_elementwise("kiln::bce_with_logits", output, target);
    return detail::explain_errors("kiln::bce_with_logits", output, target, [&] {
      return torch::binary_cross_entropy_with_logits(output, target, weight, pos_weight,
                                                     detail::aten_reduction(reduction));
    });
  }
};

/// Mean squared error, as torch.nn.MSELoss.
struct mse {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::values;
  kiln::reduction reduction = kiln::reduction::mean;
  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("reduction", reduction); }
  void validate() const { detail::check_trainable("kiln::mse", reduction); }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_elementwise("kiln::mse", output, target);
    return detail::explain_errors("kiln::mse", output, target,
                                  [&] { return torch::mse_loss(output, target, detail::aten_reduction(reduction)); });
  }
};

/// Mean absolute error, as torch.nn.L1Loss.
struct l1 {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::values;
  kiln::reduction reduction = kiln::reduction::mean;
  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("reduction", reduction); }
  void validate() const { detail::check_trainable("kiln::l1", reduction); }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_elementwise("kiln::l1", output, target);
    return detail::explain_errors("kiln::l1", output, target,
                                  [&] { return torch::l1_loss(output, target, detail::aten_reduction(reduction)); });
  }
};

/// Huber loss, as torch.nn.HuberLoss: 0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta).
struct huber {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::values;
  double delta = 1.0;
  kiln::reduction reduction = kiln::reduction::mean;
  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("delta", delta); f("reduction", reduction); }
  void validate() const {
    detail::check_positive("kiln::huber", "delta", delta);
    detail::check_trainable("kiln::huber", reduction);
  }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_elementwise("kiln::huber", output, target);
    return detail::explain_errors("kiln::huber", output, target, [&] {
      return torch::huber_loss(output, target, detail::aten_reduction(reduction), delta);
    });
  }
};

/// Smooth L1 loss, as torch.nn.SmoothL1Loss (huber divided by beta).
struct smooth_l1 {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::values;
  double beta = 1.0;
  kiln::reduction reduction = kiln::reduction::mean;
  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("beta", beta); f("reduction", reduction); }
  void validate() const {
    detail::check_non_negative("kiln::smooth_l1", "beta", beta);
    detail::check_trainable("kiln::smooth_l1", reduction);
  }
  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_elementwise("kiln::smooth_l1", output, target);
    return detail::explain_errors("kiln::smooth_l1", output, target, [&] {
      return torch::smooth_l1_loss(output, target, detail::aten_reduction(reduction), beta);
    });
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
