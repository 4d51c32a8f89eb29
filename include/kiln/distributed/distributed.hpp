// kiln/distributed/distributed.hpp — the distributed role: how many processes train one model
// together, and what the training loop asks of them.
//
//   kiln::single_process   (the default) one process does all the work; the role compiles to
//                          nothing, and the loop is exactly the plain LibTorch loop
//
// A data-parallel policy — one process per device, each with a copy of the model and a share of
// the data — plays this role through a state_type, built from the policy, that the trainer keeps
// for the whole run. The epoch loop (kiln/trainer/epoch.hpp) calls it at the points where the
// processes must agree, and nowhere else:
//
//   std::int64_t rank() const;          which process this is, and of how many; the trainer puts
//   std::int64_t world_size() const;    them in ctx.rank and ctx.world_size when it is built.
//                                       Only rank 0 writes files (kiln::context::writes_files).
//   void begin_fit(torch::nn::Module& model);
//       at the start of every fit, before any hook: make every process's model the same (check
//       names and shapes, broadcast rank 0's parameters and buffers), register gradient hooks
//   void before_backward(bool steps);
//       before each training batch's backward pass: whether the optimizer steps after it, i.e.
//       whether the batch ends an accumulate<K> window. Gradients need to travel only then
//       (PyTorch's no_sync); the last window of an epoch may end short of K batches, and is
//       stepped without a before_backward(true)
//   void reduce_gradients(torch::nn::Module& model);
//       after the backward pass of each batch that steps, before anything reads the gradients
//       (the loss scaler's unscale, on_before_optimizer_step, the step): gradients become their
//       mean over the processes. Frozen parameters have none.
//   void reduce_sums(torch::Tensor& loss_sum, std::int64_t& samples);
//       at the end of each pass over data — a training epoch, a validation — before a value is
//       computed from them: the pass's Σ loss × batch size (a double on the device) and sample
//       count become the sums over the processes
//   template <class Metrics> void reduce_metrics(Metrics& metrics);
//       at the end of each validation pass, before the metrics compute their values: the
//       pipeline's kiln::metrics<...>, whose states become those of all the processes' data
//   void barrier();                     (optional)
//       after each epoch's checkpoint hooks and after the fit's end hooks, where rank 0 may have
//       written files that the others will read: every process waits for all of them
//
// The policies:
//   kiln::single_process          (the default, below)
//   kiln::data_parallel<Backend>  (kiln/distributed/data_parallel.hpp: c10d, Gloo or NCCL, under
//                                 torchrun)
//
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::single_process{}};   // the same as leaving it out
#pragma once

#include <kiln/core/role.hpp>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <concepts>
#include <cstdint>

namespace kiln {

/// A distributed policy names its role and a state_type built from the policy, with the members
/// the file comment lists (reduce_metrics, a template, is checked where the trainer calls it).
template <class P>
concept DistributedPolicy =
    requires { typename P::state_type; } && std::constructible_from<typename P::state_type, const P&> &&
    requires(typename P::state_type& s, const typename P::state_type& cs, torch::nn::Module& model,
             torch::Tensor& loss_sum, std::int64_t& samples) {
      { cs.rank() } -> std::convertible_to<std::int64_t>;
      { cs.world_size() } -> std::convertible_to<std::int64_t>;
      s.begin_fit(model);
      s.before_backward(true);
      s.reduce_gradients(model);
      s.reduce_sums(loss_sum, samples);
    };

/// One process does all the work. The default.
struct single_process {
  using kiln_role = role::distributed;

  struct state_type {
    explicit state_type(const single_process&) noexcept {}
    [[nodiscard]] static constexpr std::int64_t rank() noexcept { return 0; }
    [[nodiscard]] static constexpr std::int64_t world_size() noexcept { return 1; }
    void begin_fit(torch::nn::Module&) noexcept {}
    void before_backward(bool) noexcept {}
    void reduce_gradients(torch::nn::Module&) noexcept {}
    void reduce_sums(torch::Tensor&, std::int64_t&) noexcept {}
    template <class Metrics>
    void reduce_metrics(Metrics&) noexcept {}
  };
};

}  // namespace kiln
