// kiln/precision/grad_scaler.hpp — dynamic loss scaling, with the rules of PyTorch's GradScaler.
//
// float16 has a narrow range: small gradients underflow to zero. The scaler multiplies the loss
// by a large factor S before backward and divides the gradients by S before the optimizer step.
// When a gradient comes out inf or NaN (S was too large), the step is skipped and S shrinks;
// after `growth_interval` finite steps in a row, S grows. The rules, as torch.amp.GradScaler:
//
//   scale      loss · S (S is a float32 tensor of shape [1], so a float16 loss is promoted)
//   unscale    every gradient g ← g · float32(1 / float64(S)); found_inf = 1 when any element
//              of any gradient was inf or NaN before the multiplication, else 0
//   step       the optimizer steps only when found_inf = 0
//   update     found_inf = 1: S ← S · backoff_factor, tracker ← 0
//              else tracker + 1 = growth_interval: S ← S · growth_factor (kept only if finite),
//                                                  tracker ← 0
//              else tracker ← tracker + 1
//              (products in float64, rounded to float32)
//
// Scaling, unscaling and updating stay on the device. Where LibTorch has kernels for the
// device (CUDA; the CPU from LibTorch 2.x) they are PyTorch's own ops
// (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_); elsewhere (the CPU in
// LibTorch 1.13) kiln computes the same rules with ordinary tensor ops. Deciding whether to
// step reads found_inf on the host: one synchronisation per optimizer step, as in PyTorch.
//
//   kiln::grad_scaler scaler{{.init_scale = 65536, .growth_interval = 2000}};
//   scaler.to(device);
//   scaler.scale(loss).backward();
//   scaler.unscale(optimizer);                 // clip gradients here if wanted
//   if (!scaler.found_inf()) optimizer.step();
//   scaler.update();
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace kiln {

/// The scaler's settings; the defaults are PyTorch's.
struct grad_scaler_options {
  double init_scale = 65536.0;      ///< S before the first step (2^16)
  double growth_factor = 2.0;       ///< S grows by this after growth_interval finite steps
  double backoff_factor = 0.5;      ///< S shrinks by this at a step with an inf/NaN gradient
  std::int64_t growth_interval = 2000;

  void validate() const {
    constexpr std::string_view who = "kiln::grad_scaler";
    detail::check_positive(who, "init_scale", init_scale);
    detail::check_option(std::isfinite(growth_factor) && growth_factor > 1.0, who, "growth_factor",
                         "a finite number > 1", growth_factor);
    detail::check_option(backoff_factor > 0.0 && backoff_factor < 1.0, who, "backoff_factor",
                         "in (0, 1)", backoff_factor);
    detail::check_option(growth_interval >= 1 && growth_interval <= 2147483647, who, "growth_interval",
                         "at least 1 (and fit in 32 bits)", growth_interval);
  }
};

namespace detail {

// True when LibTorch registers a kernel of `op` for the device's backend.
KILN_DECL bool has_kernel(const char* op, const torch::Device& device);

}  // namespace detail

/// Dynamic loss scaling (see the file comment for the rules).
class grad_scaler {
 public:
  /// What a checkpoint keeps of a scaler: the scale and the count of finite steps since the last
  /// change. Equal to PyTorch's GradScaler.state_dict()'s "scale" and "_growth_tracker".
  struct state_type {
    double scale = 65536.0;
    std::int64_t growth_tracker = 0;

    template <class F>
    void each(F&& f) {  // for kiln checkpoints
      f("scale", scale);
      f("growth_tracker", growth_tracker);
    }
  };

  explicit grad_scaler(grad_scaler_options options = {}) : options_(options) {
    options_.validate();
    scale_ = torch::full({1}, options_.init_scale, torch::kFloat);
    growth_tracker_ = torch::zeros({1}, torch::kInt);
    found_inf_ = torch::zeros({1}, torch::kFloat);
    pick_kernels(torch::kCPU);
  }

  /// Moves the scaler's tensors to `device` (values kept) and picks the kernels for it.
  void to(const torch::Device& device) {
    if (scale_.device() != device) {
      scale_ = scale_.to(device);
      growth_tracker_ = growth_tracker_.to(device);
      found_inf_ = found_inf_.to(device);
    }
    pick_kernels(device);
  }

  /// loss · S.
  [[nodiscard]] torch::Tensor scale(const torch::Tensor& loss) const { return loss * scale_; }

  /// Divides every gradient of the optimizer's parameters by S in place and records whether any
  /// was inf or NaN. Gradients must be float32 or wider (keep the weights in float32: autocast
  /// lowers the ops, not the parameters).
  void unscale(torch::optim::Optimizer& optimizer) {
    grads_.clear();  // keeps its capacity: no allocation after the first step
    for (auto& group : optimizer.param_groups()) {
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        if (p.grad().scalar_type() == torch::kHalf) {
          throw std::invalid_argument(
              "kiln::grad_scaler: a gradient is float16 and cannot be unscaled exactly; keep the "
              "parameters in float32 (autocast lowers the ops, not the weights)");
        }
        grads_.push_back(p.grad());
      }
    }
    found_inf_.zero_();
    if (grads_.empty()) return;
    const torch::Tensor inv_scale = scale_.to(torch::kDouble).reciprocal().to(torch::kFloat);
    if (native_unscale_) {
      at::_amp_foreach_non_finite_check_and_unscale_(grads_, found_inf_, inv_scale);
    } else {
      unscale_with_tensor_ops(inv_scale);
    }
  }

  /// Whether the last unscale met an inf or NaN gradient. Reads the device: one synchronisation.
  [[nodiscard]] bool found_inf() const { return found_inf_.item<float>() != 0.0F; }

  /// Updates S and the growth tracker from the last unscale's finding (on the device).
  void update() {
    if (native_update_) {
      at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, options_.growth_factor,
                             options_.backoff_factor, options_.growth_interval);
    } else {
      update_with_tensor_ops();
    }
  }

  /// The scale S, a float32 tensor of shape [1] on the scaler's device.
  [[nodiscard]] const torch::Tensor& scale_tensor() const noexcept { return scale_; }
  /// found_inf of the last unscale (1 or 0), on the device.
  [[nodiscard]] const torch::Tensor& found_inf_tensor() const noexcept { return found_inf_; }
  [[nodiscard]] const grad_scaler_options& options() const noexcept { return options_; }

  /// The scale and growth tracker, read from the device (for checkpoints; synchronises).
  [[nodiscard]] state_type state() const {
    return {scale_.item<double>(), growth_tracker_.item<std::int64_t>()};
  }
  /// Puts back what state() returned, e.g. when resuming from a checkpoint.
  void load_state(const state_type& s) {
    detail::check_positive("kiln::grad_scaler::load_state", "scale", s.scale);
    detail::check_option(s.growth_tracker >= 0 && s.growth_tracker < options_.growth_interval,
                         "kiln::grad_scaler::load_state", "growth_tracker", "in [0, growth_interval)",
                         s.growth_tracker);
    scale_.fill_(s.scale);
    growth_tracker_.fill_(s.growth_tracker);
  }

 private:
  void pick_kernels(const torch::Device& device) {
    native_unscale_ = detail::has_kernel("aten::_amp_foreach_non_finite_check_and_unscale_", device);
    native_update_ = detail::has_kernel("aten::_amp_update_scale_", device);
  }

  // The rules of the file comment, with ordinary tensor ops and no read to the host.
  void unscale_with_tensor_ops(const torch::Tensor& inv_scale) {
    torch::NoGradGuard no_grad;
    const torch::Tensor factor = inv_scale.reshape({});  // 0-dim: broadcasts into any gradient
    for (auto& g : grads_) {
      found_inf_.add_(torch::isfinite(g).logical_not().any());  // checked before the multiplication
      g.mul_(factor);
    }
    found_inf_.clamp_max_(1.0);
  }

  void update_with_tensor_ops() {
    torch::NoGradGuard no_grad;
    const torch::Tensor found = found_inf_ > 0;
    const torch::Tensor successful = growth_tracker_ + 1;
    const torch::Tensor grow = found.logical_not().logical_and(successful == options_.growth_interval);
    const torch::Tensor wide = scale_.to(torch::kDouble);
    const torch::Tensor grown = wide.mul(options_.growth_factor).to(torch::kFloat);
    const torch::Tensor backed_off = wide.mul(options_.backoff_factor).to(torch::kFloat);
    scale_.copy_(torch::where(found, backed_off,
                              torch::where(grow.logical_and(torch::isfinite(grown)), grown, scale_)));
    growth_tracker_.copy_(torch::where(found.logical_or(grow), torch::zeros_like(successful), successful));
  }

  grad_scaler_options options_;
  torch::Tensor scale_;
  torch::Tensor growth_tracker_;
  torch::Tensor found_inf_;
  std::vector<torch::Tensor> grads_;
  bool native_unscale_ = false;
  bool native_update_ = false;
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL bool has_kernel(const char* op, const torch::Device& device) {
  if (!device.is_cpu() && !device.is_cuda()) return false;
  const auto handle = c10::Dispatcher::singleton().findSchema({op, ""});
  return handle.has_value() &&
         handle->hasKernelForDispatchKey(device.is_cuda() ? c10::DispatchKey::CUDA : c10::DispatchKey::CPU);
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
