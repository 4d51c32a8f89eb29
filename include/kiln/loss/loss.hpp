// kiln/loss/loss.hpp — what a loss policy is, and what the built-in losses share.
//
// A loss policy is called as `loss(output, target)` and returns the loss as a tensor; the
// trainer calls backward() on it, so in a pipeline it must be a scalar. The built-in losses
// have a `reduction`; they reject reduction::none when a trainer is built with them (it gives
// one loss per element: useful when calling the loss directly, not for training).
//
// Bad input. Each built-in loss checks the shapes and dtypes of what it is given before it
// calls LibTorch — metadata only, no synchronisation — and throws std::invalid_argument naming
// the loss, both shapes and dtypes, and what they should be. A loss that reads class indices
// also has `check_targets(output, target)`, which reads the values (their smallest and largest,
// one reduction read on the host: a synchronisation on a GPU): the trainer calls it on the
// first batch of each epoch and of each validation, so that labels beyond the output's classes
// (a head with 10 outputs on data with 12 classes) are named before LibTorch meets them (on a
// GPU, an out-of-range index is a device-side assert that cannot be caught). Any other error
// LibTorch raises inside a built-in loss comes back as std::invalid_argument with the loss's
// name and the shapes in front of LibTorch's message.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/describe.hpp>
#include <kiln/detail/linkage.hpp>

#include <c10/util/Exception.h>
#include <torch/types.h>

#include <array>
#include <concepts>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace kiln {

/// What a loss reads its model's output as. A loss policy may say it with
/// `static constexpr kiln::output_kind output`; the built-in losses do, and an ensemble
/// (kiln/ensemble/) combines only members whose outputs are of one kind.
enum class output_kind {
  class_scores,   ///< [N, C] logits of exclusive classes (softmax): cross_entropy, softmax_focal_loss
  binary_logits,  ///< logits of independent yes/no outputs (sigmoid), [N] or [N, C]: bce_with_logits,
                  ///< sigmoid_focal_loss
  values,         ///< numbers predicted as they are: mse, l1, huber, smooth_l1
};

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
KILN_DECL void check_trainable(std::string_view where, kiln::reduction r);

/// Throws std::invalid_argument("<loss>: output <shape dtype> and target <shape dtype>: <why>").
[[noreturn]] inline void loss_input_error(std::string_view loss, const torch::Tensor& output,
                                          const torch::Tensor& target, std::string_view why) {
  throw std::invalid_argument(
      concat(loss, ": output ", describe(output), " and target ", describe(target), ": ", why));
}

/// Calls `compute()`; an error LibTorch raises in it comes back as std::invalid_argument with
/// the loss's name and its inputs in front of LibTorch's message. Running out of memory is not
/// bad input and passes through. Costs nothing when nothing is thrown.
template <class Compute>
torch::Tensor explain_errors(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target,
                             Compute&& compute) {
  try {
    return compute();
  } catch (const c10::OutOfMemoryError&) {
    throw;
  } catch (const c10::Error& e) {
    loss_input_error(loss, output, target, e.what_without_backtrace());
  }
}

/// Output and target of the same shape and the same floating-point dtype: what the
/// element-wise losses (regression, BCE, sigmoid focal) need. PyTorch broadcasts a target
/// [N] against an output [N, 1] with only a warning, and fails in backward() when the dtypes
/// differ ("Found dtype Double but expected Float"); both are refused here.
KILN_DECL void check_elementwise(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target);

/// `output` as probabilities: the softmax over `class_dim` of class scores, the sigmoid of
/// binary logits (values have none: only those two kinds are given here).
KILN_DECL torch::Tensor probabilities(const torch::Tensor& output, output_kind kind, std::int64_t class_dim);

/// The number of classes in logits [N, C, d...] or [C].
inline std::int64_t classes_of(const torch::Tensor& output) { return output.size(output.dim() == 1 ? 0 : 1); }

/// Class-index targets for logits: int64, with the output's shape less its class dimension 1
/// ([N] for [N, C], [N, d] for [N, C, d], [] for [C]).
KILN_DECL void check_class_indices(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target);

/// Every class index in `target` is in [0, classes) or is `ignore_index`. Reads the values:
/// one synchronisation (the trainer calls it on the first batch only).
KILN_DECL void check_class_range(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target,
                                 std::int64_t ignore_index);

// Applies a mean or sum reduction, or none, to per-element losses.
KILN_DECL torch::Tensor reduce(const torch::Tensor& losses, kiln::reduction r);
}  // namespace detail

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL torch::Tensor probabilities(const torch::Tensor& output, output_kind kind, std::int64_t class_dim) {
  return kind == output_kind::class_scores ? torch::softmax(output, class_dim) : torch::sigmoid(output);
}

KILN_DECL void check_trainable(std::string_view where, kiln::reduction r) {
  check_option(r != kiln::reduction::none, where, "reduction",
               "mean or sum to train a pipeline (none gives one loss per element, for calling the loss "
               "directly)",
               "none");
}

KILN_DECL void check_elementwise(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target) {
  if (!output.is_floating_point()) loss_input_error(loss, output, target, "the output must be floating-point");
  if (output.sizes() != target.sizes()) {
    loss_input_error(loss, output, target,
                     concat("the target must have the output's shape ", output.sizes(),
                            " (a model that ends in one output per sample gives [N, 1]: squeeze(1) it, or "
                            "unsqueeze(1) the target)"));
  }
  if (target.scalar_type() != output.scalar_type()) {
    loss_input_error(loss, output, target,
                     "the target must have the output's dtype; convert it with target.to(output.dtype())");
  }
}

KILN_DECL void check_class_indices(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target) {
  if (target.scalar_type() != torch::kLong) {
    loss_input_error(loss, output, target,
                     "class-index targets must be int64 (torch::kLong); convert them with target.to(torch::kLong)");
  }
  bool fits = target.dim() == output.dim() - 1;
  for (std::int64_t i = 0; fits && i < target.dim(); ++i) fits = target.size(i) == output.size(i == 0 ? 0 : i + 1);
  if (!fits) {
    auto expected = output.sizes().vec();
    expected.erase(expected.begin() + (output.dim() == 1 ? 0 : 1));
    loss_input_error(loss, output, target,
                     concat("class-index targets must have the output's shape without its class dimension, ",
                            c10::IntArrayRef{expected}));
  }
}

KILN_DECL void check_class_range(std::string_view loss, const torch::Tensor& output, const torch::Tensor& target,
                                 std::int64_t ignore_index) {
  const std::int64_t classes = classes_of(output);
  if (target.numel() == 0) return;
  // One reduction for the common case, every target a class; the mask only when some is not, or
  // when targets equal to ignore_index fall outside the classes.
  const auto [low, high] = torch::aminmax(target);
  if (low.item<std::int64_t>() >= 0 && high.item<std::int64_t>() < classes) return;
  const auto bad = target.lt(0).logical_or_(target.ge(classes)).logical_and_(target.ne(ignore_index));
  if (!bad.any().item<bool>()) return;
  const auto first = target.masked_select(bad)[0].item<std::int64_t>();
  throw std::invalid_argument(concat(
      loss, ": a target is ", first, " but the output ", describe(output), " has ", classes,
      " classes; class indices must be in [0, ", classes - 1, "] (or ignore_index = ", ignore_index,
      "). Does the head have as many outputs as the data has classes?"));
}

KILN_DECL torch::Tensor reduce(const torch::Tensor& losses, kiln::reduction r) {
  switch (r) {
    case kiln::reduction::mean: return losses.mean();
    case kiln::reduction::sum: return losses.sum();
    case kiln::reduction::none: break;
  }
  return losses;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
