// kiln/execution/execution.hpp — the execution role: how each training step is launched.
//
//   kiln::eager       (the default) every op launched as the step runs, as in a plain loop
//   kiln::cuda_graph  the whole step (forward, backward, optimizer step) captured once in a CUDA
//                     graph and replayed; for static shapes on CUDA (kiln/execution/cuda_graph.hpp)
//
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::sgd{}, kiln::cuda_graph{}};
#pragma once

#include <kiln/core/role.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstddef>

namespace kiln {

namespace detail {
struct step_probe {
  torch::Tensor operator()(const torch::Tensor&, const torch::Tensor&) const;
};
}  // namespace detail

/// An execution policy names its role and a state_type, built from the policy, with
///   static constexpr bool captures;
/// and, when captures:
///   torch::Tensor run(input, target, step)  runs step(input, target) -> loss its own way
///   template <class Optimizer, class Scheduler, std::size_t Accumulation, bool ScalesLoss,
///             class Callbacks> static constexpr bool allows();  compile-time checks of the rest
///                                                                of the pipeline
template <class P>
concept ExecutionPolicy =
    requires { typename P::state_type; } && std::constructible_from<typename P::state_type, const P&> &&
    requires {
      { P::state_type::captures } -> std::convertible_to<bool>;
    } &&
    (!P::state_type::captures ||
     requires(typename P::state_type& s, const torch::Tensor& t) {
       { s.run(t, t, detail::step_probe{}) } -> std::same_as<torch::Tensor>;
     });

/// Each op launched as the step runs. The default.
struct eager {
  using kiln_role = role::execution;
  struct state_type {
    static constexpr bool captures = false;
    explicit state_type(const eager&) noexcept {}
  };
};

namespace detail {

/// The execution policy's compile-time checks of the rest of the pipeline, when it has some.
template <class Execution, class Optimizer, class Scheduler, std::size_t Accumulation, bool ScalesLoss,
          class Callbacks>
constexpr bool execution_allows() {
  if constexpr (requires {
                  Execution::template allows<Optimizer, Scheduler, Accumulation, ScalesLoss, Callbacks>();
                }) {
    return Execution::template allows<Optimizer, Scheduler, Accumulation, ScalesLoss, Callbacks>();
  } else {
    return true;
  }
}

}  // namespace detail
}  // namespace kiln
