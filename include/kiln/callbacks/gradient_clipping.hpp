// kiln/callbacks/gradient_clipping.hpp — clipping gradients before each optimizer step.
//
//   kiln::clip_grad_norm   rescale all gradients together so that their total p-norm is at most
//                          max_norm, as torch.nn.utils.clip_grad_norm_
//   kiln::clip_grad_value  clamp every gradient element to [−clip_value, clip_value], as
//                          torch.nn.utils.clip_grad_value_
//
// Neither reads a value back to the host: LibTorch's C++ clip_grad_norm_ returns the norm as a
// double, which synchronises with the device at every step, so kiln computes the same formula
// (coefficient = max_norm / (total_norm + 1e-6), clamped to at most 1) on the device. So both
// may run inside a step captured by kiln::cuda_graph. Under fp16 mixed precision they see the
// unscaled gradients.
//
//   kiln::callbacks{kiln::clip_grad_norm{.max_norm = 1.0}}
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <cmath>
#include <limits>
#include <string_view>
#include <vector>

namespace kiln {

struct clip_grad_norm {
  static constexpr bool runs_in_captured_step = true;  // device work only (kiln::cuda_graph)
  double max_norm = 1.0;
  double norm_type = 2.0;  ///< p of the p-norm; infinity for the largest absolute value

  /// The options by name, for kiln::config: "callbacks.clip_grad_norm.<option>".
  static constexpr std::string_view config_name = "clip_grad_norm";
  template <class F>
  void each_option(F&& f) { f("max_norm", max_norm); f("norm_type", norm_type); }

  struct state_type {
    std::vector<torch::Tensor> params;
    std::vector<torch::Tensor> norms;  // reused: its capacity stays after the first step
    torch::Tensor last_total_norm;
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context& ctx);

  KILN_DECL void on_before_optimizer_step(kiln::context&);

  /// Total norm of the gradients before the last clipping, on the device (reading it syncs).
  [[nodiscard]] const torch::Tensor& last_total_norm() const noexcept { return state.last_total_norm; }
};

struct clip_grad_value {
  static constexpr bool runs_in_captured_step = true;  // device work only (kiln::cuda_graph)
  double clip_value = 1.0;

  /// The options by name, for kiln::config: "callbacks.clip_grad_value.<option>".
  static constexpr std::string_view config_name = "clip_grad_value";
  template <class F>
  void each_option(F&& f) { f("clip_value", clip_value); }

  struct state_type {
    std::vector<torch::Tensor> params;
  };
  state_type state{};  ///< running state (not an option)

  void on_fit_begin(kiln::context& ctx) {
    detail::check_positive("kiln::clip_grad_value", "clip_value", clip_value);
    state.params = ctx.model.parameters();
  }
  KILN_DECL void on_before_optimizer_step(kiln::context&);
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void clip_grad_norm::on_fit_begin(kiln::context& ctx) {
  detail::check_positive("kiln::clip_grad_norm", "max_norm", max_norm);
  detail::check_option(norm_type > 0.0, "kiln::clip_grad_norm", "norm_type", "> 0", norm_type);
  state.params = ctx.model.parameters();  // once, so that no step allocates the list again
}

KILN_DECL void clip_grad_norm::on_before_optimizer_step(kiln::context&) {
  torch::NoGradGuard no_grad;
  state.norms.clear();
  for (const auto& p : state.params) {
    if (p.grad().defined()) state.norms.push_back(p.grad().detach().norm(norm_type));
  }
  if (state.norms.empty()) return;
  const auto total = std::isinf(norm_type) ? torch::stack(state.norms).max() : torch::stack(state.norms).norm(norm_type);
  state.last_total_norm = total;
  const auto coefficient = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (auto& p : state.params) {
    if (p.grad().defined()) p.mutable_grad().mul_(coefficient);
  }
}

KILN_DECL void clip_grad_value::on_before_optimizer_step(kiln::context&) {
  torch::NoGradGuard no_grad;
  for (auto& p : state.params) {
    if (p.grad().defined()) p.mutable_grad().clamp_(-clip_value, clip_value);
  }
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
