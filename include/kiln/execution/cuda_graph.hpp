// kiln/execution/cuda_graph.hpp — the whole training step captured in a CUDA graph.
//
// For a model whose every batch has the same shape, launching a step's kernels one by one costs
// more than running them when the model is small (each launch costs microseconds of CPU). A
// CUDA graph records the step's kernels once and launches them all with one call:
//
//   1. the first `warmup_steps` batches train eagerly on a side stream (LibTorch allocates its
//      workspaces and the optimizer its state there, which a capture must not do);
//   2. the next batch is copied into static input and target tensors, and zero_grad, forward,
//      loss, backward, the callbacks' on_before_optimizer_step and optimizer.step() are captured
//      (not run) on the side stream, with autocast's weight cache off;
//   3. that batch and each later one is copied into the static tensors and the graph replayed.
// Warm-up steps are real steps on real batches, so a run is the eager run, step for step.
//
// What a replay cannot change, checked at compile time: the learning rate (the scheduler must
// be kiln::constant_lr), the number of batches per step (accumulate<1>), the loss scale of fp16
// (it decides on the host whether to step; bf16 is fine), an optimizer that keeps state on the
// host (LibTorch's Adam, AdamW and Adagrad count steps there; kiln::sgd and kiln::rmsprop keep
// everything on the device), and any on_before_optimizer_step callback not marked
// `static constexpr bool runs_in_captured_step = true` (its hook would run once, at capture).
// Checked at run time: a batch whose shape differs from the captured one is refused (use
// kiln::data::batch_options{.drop_last = true}); the trainer must be on a CUDA device.
//
// The loss the trainer reports for a replayed step is read from the graph's static output.
//
// LibTorch's CUDA headers need the CUDA toolkit's <cuda_runtime_api.h> and a LibTorch built
// with CUDA; where either is missing the policy still compiles and its first step says so.
//
//   kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 0.1}, kiln::cuda_graph{}};
//   t.to(torch::kCUDA);
//   t.fit(batches_on_the_gpu);
#pragma once

#include <kiln/callbacks/callbacks.hpp>
#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/execution/execution.hpp>
#include <kiln/schedule/decay.hpp>

#include <ATen/autocast_mode.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

// A LibTorch built with CUDA ships c10/cuda/impl/cuda_cmake_macros.h (Debian's CPU build has
// the other CUDA headers but not this one); the CUDA toolkit brings cuda_runtime_api.h.
#if defined(__has_include)
#if __has_include(<cuda_runtime_api.h>) && __has_include(<ATen/cuda/CUDAGraph.h>) && \
    __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#define KILN_HAS_CUDA_GRAPHS 1
#endif
#endif
#ifndef KILN_HAS_CUDA_GRAPHS
#define KILN_HAS_CUDA_GRAPHS 0
#endif

#if KILN_HAS_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace kiln {

namespace detail {

/// Optimizers whose LibTorch step reads nothing from the host that changes from step to step.
template <class Optimizer>
inline constexpr bool replays_exactly =
    std::is_same_v<Optimizer, torch::optim::SGD> || std::is_same_v<Optimizer, torch::optim::RMSprop>;

template <class C>
constexpr bool step_hook_replays() {
  if constexpr (hook::before_optimizer_step::template declared<C>) {
    return requires { requires C::runs_in_captured_step; };
  } else {
    return true;
  }
}

template <class Callbacks>
struct step_hooks_replay : std::true_type {};
template <class... Cs>
struct step_hooks_replay<callbacks<Cs...>> : std::bool_constant<(step_hook_replays<Cs>() && ...)> {};

}  // namespace detail

/// The whole training step in a CUDA graph (see the file comment).
struct cuda_graph {
  using kiln_role = role::execution;

  std::int64_t warmup_steps = 3;  ///< eager steps before the capture (PyTorch's examples use 3)

  void validate() const {
    detail::check_option(warmup_steps >= 1, "kiln::cuda_graph", "warmup_steps", "at least 1", warmup_steps);
  }

  template <class Optimizer, class Scheduler, std::size_t Accumulation, bool ScalesLoss, class Callbacks>
  static constexpr bool allows() {
    static_assert(detail::replays_exactly<Optimizer>,
                  "kiln::cuda_graph: LibTorch's Adam, AdamW and Adagrad keep their step count on the host, so a "
                  "replayed step would repeat the captured step's bias correction; use kiln::sgd or "
                  "kiln::rmsprop with kiln::cuda_graph, or leave kiln::cuda_graph out.");
    static_assert(std::is_same_v<Scheduler, constant_lr>,
                  "kiln::cuda_graph: a captured step replays the learning rate it was captured with; leave "
                  "the scheduler out (kiln::constant_lr) or leave kiln::cuda_graph out.");
    static_assert(Accumulation == 1,
                  "kiln::cuda_graph: a captured step is one whole optimizer step; remove kiln::accumulate<K> "
                  "(or capture batches K times larger).");
    static_assert(!ScalesLoss,
                  "kiln::cuda_graph: fp16 loss scaling decides on the host whether to step; use "
                  "kiln::mixed_precision<kiln::bf16> with kiln::cuda_graph, or leave kiln::cuda_graph out.");
    static_assert(detail::step_hooks_replay<Callbacks>::value,
                  "kiln::cuda_graph: a callback has on_before_optimizer_step, which a captured step runs once, "
                  "at capture; declare `static constexpr bool runs_in_captured_step = true;` in a callback "
                  "whose hook only launches device work (as kiln::clip_grad_norm does), or leave "
                  "kiln::cuda_graph out.");
    return true;
  }

  class state_type {
   public:
    static constexpr bool captures = true;

    explicit state_type(const cuda_graph& policy) : warmup_steps_(policy.warmup_steps) { policy.validate(); }

    /// Runs step(input, target) -> loss: eagerly while warming up, then as a graph replay.
    template <class Step>
    torch::Tensor run(const torch::Tensor& input, const torch::Tensor& target, Step&& step) {
#if KILN_HAS_CUDA_GRAPHS
      if (graph_ == nullptr) {
        if (!input.is_cuda()) {
          throw std::invalid_argument(detail::concat(
              "kiln::cuda_graph: the batch is on ", input.device().str(),
              "; a captured step runs on a CUDA device: call trainer.to(torch::kCUDA) before fit"));
        }
        if (warmed_up_ < warmup_steps_) return warm_up(input, target, step);
        capture(input, target, step);
      }
      check_shape(input, target);
      static_input_.copy_(input, /*non_blocking=*/true);
      static_target_.copy_(target, /*non_blocking=*/true);
      graph_->replay();
      return static_loss_;
#else
      (void)input, (void)target, (void)step;
      throw std::runtime_error(
          "kiln::cuda_graph: this program was compiled without the CUDA headers (<cuda_runtime_api.h> "
          "and LibTorch's c10/cuda/impl/cuda_cmake_macros.h): the LibTorch it uses is a CPU build. Build "
          "against a CUDA LibTorch, or leave kiln::cuda_graph out (kiln::eager is the default).");
#endif
    }

    /// True once the step has been captured.
    [[nodiscard]] bool captured() const noexcept {
#if KILN_HAS_CUDA_GRAPHS
      return graph_ != nullptr;
#else
      return false;
#endif
    }

   private:
#if KILN_HAS_CUDA_GRAPHS
    template <class Step>
    torch::Tensor warm_up(const torch::Tensor& input, const torch::Tensor& target, Step& step) {
      const auto current = c10::cuda::getCurrentCUDAStream(input.device().index());
      if (!side_) side_ = c10::cuda::getStreamFromPool(false, input.device().index());
      at::cuda::CUDAEvent ready;
      ready.record(current);
      ready.block(*side_);
      torch::Tensor loss;
      {
        c10::cuda::CUDAStreamGuard on_side(*side_);
        loss = step(input, target);
      }
      at::cuda::CUDAEvent done;
      done.record(*side_);
      done.block(current);
      ++warmed_up_;
      return loss;
    }

    template <class Step>
    void capture(const torch::Tensor& input, const torch::Tensor& target, Step& step) {
      static_input_ = torch::empty_like(input);
      static_target_ = torch::empty_like(target);
      c10::cuda::device_synchronize();  // nothing of the warm-up may still run during the capture
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      const bool cache = at::autocast::is_autocast_cache_enabled();
      at::autocast::set_autocast_cache_enabled(false);  // cast weights must be recomputed each replay
      {
        c10::cuda::CUDAStreamGuard on_side(*side_);
        graph->capture_begin();
        try {
          static_loss_ = step(static_input_, static_target_);
        } catch (...) {
          try {
            graph->capture_end();
          } catch (...) {  // the first error is the one to report
          }
          at::autocast::set_autocast_cache_enabled(cache);
          throw;
        }
        graph->capture_end();
      }
      at::autocast::set_autocast_cache_enabled(cache);
      c10::cuda::device_synchronize();
      graph_ = std::move(graph);
    }

    void check_shape(const torch::Tensor& input, const torch::Tensor& target) const {
      if (input.sizes() != static_input_.sizes() || target.sizes() != static_target_.sizes() ||
          input.scalar_type() != static_input_.scalar_type() ||
          target.scalar_type() != static_target_.scalar_type() || input.device() != static_input_.device()) {
        throw std::invalid_argument(detail::concat(
            "kiln::cuda_graph: a batch of inputs ", input.sizes(), " and targets ", target.sizes(),
            " differs from the captured ", static_input_.sizes(), " and ", static_target_.sizes(),
            " (or in dtype or device); a captured step replays fixed shapes: give every batch the same "
            "size (kiln::data::batch_options{.drop_last = true}) or leave kiln::cuda_graph out"));
      }
    }

    std::unique_ptr<at::cuda::CUDAGraph> graph_;
    std::optional<c10::cuda::CUDAStream> side_;
    torch::Tensor static_input_, static_target_, static_loss_;
#endif
    std::int64_t warmup_steps_;
    std::int64_t warmed_up_ = 0;
  };
};

}  // namespace kiln
