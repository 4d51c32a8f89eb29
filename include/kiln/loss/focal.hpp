// kiln/loss/focal.hpp — focal losses: cross-entropy that down-weights the easy examples.
//
//   kiln::sigmoid_focal_loss   per-element binary form, exactly torchvision.ops.sigmoid_focal_loss
//   kiln::softmax_focal_loss   multi-class form over a softmax, per-class alpha
//
//   kiln::sigmoid_focal_loss{.alpha = 0.25, .gamma = 2.0}            // RetinaNet's values
//   kiln::softmax_focal_loss{.alpha = torch::tensor({0.25, 0.75}), .gamma = 2.0}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/loss/loss.hpp>

#include <torch/types.h>

#include <cstdint>
#include <string_view>

namespace kiln {

/// Focal loss on logits with targets in [0, 1] of the same shape (binary or multi-label), as
/// torchvision.ops.sigmoid_focal_loss (Lin et al., 2017), element by element:
///   p = sigmoid(x);  ce = BCE-with-logits(x, t);  p_t = p·t + (1 − p)·(1 − t)
///   loss = ce · (1 − p_t)^gamma,  times alpha_t = alpha·t + (1 − alpha)·(1 − t) when alpha ≥ 0
/// (alpha < 0 switches the weighting off). Unlike torchvision, whose default reduction is
/// "none", the default here is the mean over all elements, what training needs.
struct sigmoid_focal_loss {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::binary_logits;
  double alpha = 0.25;  ///< weight of the positive class, in [0, 1]; negative: no weighting
  double gamma = 2.0;   ///< focusing exponent, >= 0; 0 gives (alpha-weighted) BCE
  kiln::reduction reduction = kiln::reduction::mean;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("alpha", alpha); f("gamma", gamma); f("reduction", reduction); }

  void validate() const {
    detail::check_option(alpha <= 1.0, "kiln::sigmoid_focal_loss", "alpha", "at most 1 (negative: no weighting)",
                         alpha);
    detail::check_non_negative("kiln::sigmoid_focal_loss", "gamma", gamma);
    detail::check_trainable("kiln::sigmoid_focal_loss", reduction);
  }

  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_elementwise("kiln::sigmoid_focal_loss", output, target);
    return detail::explain_errors("kiln::sigmoid_focal_loss", output, target,
                                  [&] { return compute(output, target); });
  }

 private:
  torch::Tensor compute(const torch::Tensor& output, const torch::Tensor& target) const {
    const torch::Tensor p = torch::sigmoid(output);
    const torch::Tensor ce = torch::binary_cross_entropy_with_logits(output, target, {}, {},
                                                                     detail::aten_reduction(kiln::reduction::none));
    const torch::Tensor p_t = p * target + (1 - p) * (1 - target);
    torch::Tensor loss = ce * (1 - p_t).pow(gamma);
    if (alpha >= 0) loss = (alpha * target + (1 - alpha) * (1 - target)) * loss;
    return detail::reduce(loss, reduction);
  }
};

/// Focal loss over a softmax, for multi-class targets: logits [N, C], class indices [N].
/// For sample i with target y_i and p_i = softmax(x_i)[y_i]:
///   loss_i = −alpha[y_i] · (1 − p_i)^gamma · log p_i      (alpha undefined: alpha[y] = 1)
/// computed from log_softmax for stability. Samples whose target is `ignore_index` give 0 and
/// are not counted. Reduction mean: the sum over the counted samples divided by their number
/// (not by the sum of their alpha, unlike a weighted cross_entropy). With gamma = 0 and no
/// alpha it is cross_entropy.
struct softmax_focal_loss {
  using kiln_role = role::loss;
  static constexpr output_kind output = output_kind::class_scores;
  torch::Tensor alpha{};  ///< per-class weights [C]; undefined = all 1
  double gamma = 2.0;     ///< focusing exponent, >= 0
  std::int64_t ignore_index = -100;
  kiln::reduction reduction = kiln::reduction::mean;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp); the per-class
  /// alpha is a tensor, set in code.
  template <class F>
  void each_option(F&& f) { f("gamma", gamma); f("ignore_index", ignore_index); f("reduction", reduction); }

  void validate() const {
    detail::check_option(!alpha.defined() || alpha.dim() == 1, "kiln::softmax_focal_loss", "alpha",
                         "a 1-D tensor with one weight per class", alpha.defined() ? alpha.sizes() : c10::IntArrayRef{});
    detail::check_non_negative("kiln::softmax_focal_loss", "gamma", gamma);
    detail::check_trainable("kiln::softmax_focal_loss", reduction);
  }
  void to(const torch::Device& device) { detail::move_option(alpha, device); }

  torch::Tensor operator()(const torch::Tensor& output, const torch::Tensor& target) const {
    constexpr std::string_view name = "kiln::softmax_focal_loss";
    if (!output.is_floating_point() || output.dim() != 2) {
      detail::loss_input_error(name, output, target, "the output must be floating-point logits [N, C]");
    }
    detail::check_class_indices(name, output, target);
    if (alpha.defined() && alpha.size(0) != output.size(1)) {
      detail::loss_input_error(name, output, target,
                               detail::concat("alpha has ", alpha.size(0), " weights but the output has ",
                                              output.size(1), " classes"));
    }
    return detail::explain_errors(name, output, target, [&] { return compute(output, target); });
  }
  /// Class indices in [0, C) or ignore_index (reads the values; see kiln/loss/loss.hpp).
  void check_targets(const torch::Tensor& output, const torch::Tensor& target) const {
    detail::check_class_range("kiln::softmax_focal_loss", output, target, ignore_index);
  }

 private:
  torch::Tensor compute(const torch::Tensor& output, const torch::Tensor& target) const {
    const torch::Tensor counted = target.ne(ignore_index);
    const torch::Tensor classes = target.masked_fill(counted.logical_not(), 0);  // any valid index
    const torch::Tensor log_p = torch::log_softmax(output, 1).gather(1, classes.unsqueeze(1)).squeeze(1);
    torch::Tensor loss = (1 - log_p.exp()).pow(gamma) * log_p;
    loss = alpha.defined() ? -alpha.index_select(0, classes) * loss : -loss;
    loss = loss.masked_fill(counted.logical_not(), 0);
    if (reduction == kiln::reduction::mean) return loss.sum() / counted.sum();
    return detail::reduce(loss, reduction);
  }
};

}  // namespace kiln
