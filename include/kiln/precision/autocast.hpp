// kiln/precision/autocast.hpp — a scope that runs LibTorch's ops under autocast.
//
// autocast_guard does what Python's `with torch.autocast(device_type, dtype):` does: it turns
// autocast on for one device type with the given lower-precision dtype, counts itself in
// autocast's nesting, and when it ends clears the cache of cast weights (outermost scope only)
// and puts back the previous state. Whether casts are cached is left as it was (Python's
// default, cache_enabled=None, does the same), so a caller may turn the cache off around it.
//
// LibTorch changed this API in 2.4 (one set of functions taking a device type, in place of
// separate CPU and CUDA ones); both are handled here.
//
//   { kiln::autocast_guard on{c10::DeviceType::CPU, torch::kBFloat16}; out = model->forward(x); }
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <ATen/autocast_mode.h>
#include <torch/types.h>
#include <torch/version.h>

#include <stdexcept>
#include <string_view>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define KILN_DETAIL_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define KILN_DETAIL_AUTOCAST_BY_DEVICE_TYPE 0
#endif

namespace kiln {
namespace detail {

#if KILN_DETAIL_AUTOCAST_BY_DEVICE_TYPE
inline bool autocast_enabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void set_autocast_enabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
inline c10::ScalarType autocast_dtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
inline void set_autocast_dtype(c10::DeviceType d, c10::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
inline bool autocast_enabled(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void set_autocast_enabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
inline c10::ScalarType autocast_dtype(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                    : at::autocast::get_autocast_cpu_dtype();
}
inline void set_autocast_dtype(c10::DeviceType d, c10::ScalarType t) {
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(t);
  } else {
    at::autocast::set_autocast_cpu_dtype(t);
  }
}
#endif

}  // namespace detail

/// Throws, naming `who`, unless autocast to `dtype` is available on `device` in this LibTorch.
KILN_DECL void check_autocast(const torch::Device& device, c10::ScalarType dtype, std::string_view who);

/// Runs the ops of its scope under autocast on one device type (see the file comment).
class autocast_guard {
 public:
  autocast_guard(c10::DeviceType device_type, c10::ScalarType dtype)
      : device_type_(device_type),
        previous_enabled_(detail::autocast_enabled(device_type)),
        previous_dtype_(detail::autocast_dtype(device_type)) {
    detail::set_autocast_enabled(device_type_, true);
    detail::set_autocast_dtype(device_type_, dtype);
    at::autocast::increment_nesting();
  }
  ~autocast_guard() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    detail::set_autocast_enabled(device_type_, previous_enabled_);
    detail::set_autocast_dtype(device_type_, previous_dtype_);
  }
  autocast_guard(const autocast_guard&) = delete;
  autocast_guard& operator=(const autocast_guard&) = delete;

 private:
  c10::DeviceType device_type_;
  bool previous_enabled_;
  c10::ScalarType previous_dtype_;
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void check_autocast(const torch::Device& device, c10::ScalarType dtype, std::string_view who) {
  if (!device.is_cpu() && !device.is_cuda()) {
    throw std::invalid_argument(detail::concat(
        who, ": kiln autocasts on the CPU and on CUDA devices only, not on ", device.str(),
        "; train there, or use kiln::full_precision"));
  }
  if (dtype != torch::kBFloat16 && dtype != torch::kHalf) {
    throw std::invalid_argument(detail::concat(who, ": autocast lowers to bfloat16 or float16, not to ", dtype));
  }
#if TORCH_VERSION_MAJOR < 2
  if (device.is_cpu() && dtype == torch::kHalf) {
    throw std::invalid_argument(detail::concat(
        who, ": LibTorch ", TORCH_VERSION, " autocasts to bfloat16 only on the CPU; use "
        "kiln::mixed_precision<kiln::bf16> there, or train on a CUDA device (trainer.to(torch::kCUDA))"));
  }
#endif
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
