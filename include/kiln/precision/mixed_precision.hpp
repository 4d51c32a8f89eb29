// kiln/precision/mixed_precision.hpp — automatic mixed precision, as a precision policy.
//
//   kiln::mixed_precision<kiln::bf16>{}   forward and loss under autocast to bfloat16; backward
//                                         and the optimizer step as usual. CPU and CUDA.
//   kiln::mixed_precision<kiln::fp16>{.init_scale = 65536, .growth_factor = 2,
//                                     .backoff_factor = 0.5, .growth_interval = 2000}
//                                         autocast to float16 and dynamic loss scaling
//                                         (kiln/precision/grad_scaler.hpp). CUDA; the CPU only
//                                         from LibTorch 2.x.
//
// Weights stay in their dtype (float32); autocast runs each op in the dtype PyTorch's autocast
// lists give it, exactly as `with torch.autocast(device_type, dtype)` around the forward pass
// and the loss. The device type is the trainer's (trainer.to(device)).
//
// With fp16, each optimizer step goes:
//   backward of loss · S → unscale the gradients (so that on_before_optimizer_step callbacks,
//   gradient clipping included, see their true values, as in Lightning) → callbacks → if no
//   gradient is inf/NaN: optimizer step, else skip it → update S.
// A skipped step is not an optimizer step: ctx.step does not advance, and neither does a
// per-step scheduler, so the schedule follows the updates actually applied. (A plain PyTorch
// loop calls scheduler.step() after a skipped step anyway, and PyTorch warns about exactly that
// order.) Deciding to skip reads one flag from the device per optimizer step, as PyTorch's
// GradScaler.step does; bf16 reads nothing.
//
// The scaler's state (scale, growth tracker) is trainer.precision().scaler().state() /
// load_state(...), for checkpoints.
//
// Only training steps run under autocast: validation and predict run in the weights' dtype,
// so that metrics are the full-precision model's (Lightning autocasts those too).
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/precision/autocast.hpp>
#include <kiln/precision/grad_scaler.hpp>
#include <kiln/precision/precision.hpp>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <string_view>

namespace kiln {

/// bfloat16: float32's range with 8 bits of mantissa; needs no loss scaling.
struct bf16 {
  static constexpr c10::ScalarType dtype = c10::ScalarType::BFloat16;
  static constexpr bool scales_loss = false;
};

/// float16: 10 bits of mantissa but a narrow range; trained with dynamic loss scaling.
struct fp16 {
  static constexpr c10::ScalarType dtype = c10::ScalarType::Half;
  static constexpr bool scales_loss = true;
};

/// A dtype tag for mixed_precision: `dtype`, what autocast lowers to (Undefined: no autocast,
/// loss scaling alone), and whether the loss is scaled.
template <class D>
concept MixedPrecisionDtype = requires {
  { D::dtype } -> std::convertible_to<c10::ScalarType>;
  { D::scales_loss } -> std::convertible_to<bool>;
};

template <class Dtype>
struct mixed_precision;

namespace detail {

template <class Dtype>
class mixed_precision_state;

template <class Dtype>
constexpr bool known_precision_dtype() {
  static_assert(MixedPrecisionDtype<Dtype>,
                "kiln::mixed_precision<D>: D is not a precision dtype; write "
                "kiln::mixed_precision<kiln::bf16> or kiln::mixed_precision<kiln::fp16>.");
  return true;
}

}  // namespace detail

/// Mixed precision without loss scaling (bf16).
template <class Dtype>
  requires(detail::known_precision_dtype<Dtype>() && !Dtype::scales_loss)
struct mixed_precision<Dtype> {
  using kiln_role = role::precision;
  using state_type = detail::mixed_precision_state<Dtype>;
};

/// Mixed precision with dynamic loss scaling (fp16); the options are PyTorch GradScaler's.
template <class Dtype>
  requires(detail::known_precision_dtype<Dtype>() && Dtype::scales_loss)
struct mixed_precision<Dtype> {
  using kiln_role = role::precision;
  using state_type = detail::mixed_precision_state<Dtype>;

  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;

  [[nodiscard]] grad_scaler_options scaler_options() const {
    return {.init_scale = init_scale, .growth_factor = growth_factor, .backoff_factor = backoff_factor,
            .growth_interval = growth_interval};
  }
  void validate() const { scaler_options().validate(); }
};

namespace detail {

struct no_scaler {
  template <class P>
  explicit no_scaler(const P&) noexcept {}
};

template <class Dtype>
class mixed_precision_state {
  static constexpr bool autocasts = Dtype::dtype != c10::ScalarType::Undefined;

 public:
  static constexpr bool scales_loss = Dtype::scales_loss;
  using scaler_type = std::conditional_t<scales_loss, grad_scaler, no_scaler>;

  explicit mixed_precision_state(const mixed_precision<Dtype>& policy) : scaler_(make_scaler(policy)) {}

  void prepare(const torch::Device& device) {
    if constexpr (autocasts) check_autocast(device, Dtype::dtype, "kiln::mixed_precision");
    device_type_ = device.type();
    if constexpr (scales_loss) scaler_.to(device);
  }

  template <class F>
  torch::Tensor forward(F&& f) {
    if constexpr (autocasts) {
      autocast_guard on{device_type_, Dtype::dtype};
      return f();
    } else {
      return f();
    }
  }

  void backward(const torch::Tensor& loss) {
    if constexpr (scales_loss) {
      scaler_.scale(loss).backward();
    } else {
      loss.backward();
    }
  }

  void unscale(torch::optim::Optimizer& optimizer)
    requires scales_loss
  {
    scaler_.unscale(optimizer);
  }

  /// Steps unless the last unscale found an inf/NaN gradient, then updates the scale.
  bool step(torch::optim::Optimizer& optimizer)
    requires scales_loss
  {
    const bool finite = !scaler_.found_inf();  // the one read from the device
    if (finite) {
      optimizer.step();
    } else {
      ++skipped_;
    }
    scaler_.update();
    return finite;
  }

  /// The loss scaler: scale, state() and load_state() for checkpoints.
  [[nodiscard]] grad_scaler& scaler() noexcept
    requires scales_loss
  {
    return scaler_;
  }
  /// Optimizer steps skipped for an inf/NaN gradient, over the trainer's life.
  [[nodiscard]] std::int64_t skipped_steps() const noexcept
    requires scales_loss
  {
    return skipped_;
  }

 private:
  static scaler_type make_scaler(const mixed_precision<Dtype>& policy) {
    if constexpr (scales_loss) {
      return grad_scaler{policy.scaler_options()};
    } else {
      return no_scaler{policy};
    }
  }

  [[no_unique_address]] scaler_type scaler_;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
  std::int64_t skipped_ = 0;
};

}  // namespace detail
}  // namespace kiln
