// kiln/precision/precision.hpp — the precision role: in which dtype the forward pass runs.
//
//   kiln::full_precision                 (the default) every op in the parameters' own dtype;
//                                        the loop is exactly the plain LibTorch loop
//   kiln::mixed_precision<kiln::bf16>{}  forward and loss under autocast to bfloat16, on the CPU
//                                        or a CUDA device; no loss scaling (bf16 has fp32's range)
//   kiln::mixed_precision<kiln::fp16>{}  autocast to float16 with dynamic loss scaling (CUDA;
//                                        the CPU too from LibTorch 2.x)
//
// mixed_precision lives in kiln/precision/mixed_precision.hpp; include it where it is used.
//
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::mixed_precision<kiln::bf16>{}};
#pragma once

#include <kiln/core/role.hpp>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <concepts>

namespace kiln {

namespace detail {
struct forward_probe {
  torch::Tensor operator()() const;
};
}  // namespace detail

/// A precision policy names its role and a state_type, built from the policy, that the trainer
/// keeps for the whole run:
///
///   static constexpr bool scales_loss;
///   void prepare(const torch::Device&);        before each epoch: checks, moves its tensors
///   torch::Tensor forward(F f);                 runs f() (forward and loss) in its precision
///   void backward(const torch::Tensor& loss);  loss.backward(), scaled when it scales
///   and, when scales_loss:
///   void unscale(torch::optim::Optimizer&);    gradients back to their true size, in place
///   bool step(torch::optim::Optimizer&);       steps unless a gradient was inf/NaN; says which
template <class P>
concept PrecisionPolicy =
    requires { typename P::state_type; } && std::constructible_from<typename P::state_type, const P&> &&
    requires(typename P::state_type& s, const torch::Device& device, const torch::Tensor& loss) {
      { P::state_type::scales_loss } -> std::convertible_to<bool>;
      s.prepare(device);
      { s.forward(detail::forward_probe{}) } -> std::same_as<torch::Tensor>;
      s.backward(loss);
    } &&
    (!P::state_type::scales_loss || requires(typename P::state_type& s, torch::optim::Optimizer& o) {
      s.unscale(o);
      { s.step(o) } -> std::same_as<bool>;
    });

/// Every op in the parameters' dtype, as in a plain LibTorch loop. The default.
struct full_precision {
  using kiln_role = role::precision;

  struct state_type {
    static constexpr bool scales_loss = false;
    explicit state_type(const full_precision&) noexcept {}
    void prepare(const torch::Device&) noexcept {}
    template <class F>
    torch::Tensor forward(F&& f) {
      return f();
    }
    void backward(const torch::Tensor& loss) { loss.backward(); }
  };
};

}  // namespace kiln
