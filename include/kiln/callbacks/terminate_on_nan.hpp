// kiln/callbacks/terminate_on_nan.hpp — what to do when training stops producing numbers.
//
//   kiln::terminate_on_nan      stop the fit, and say why, once the training loss is NaN or infinite
//   kiln::skip_nonfinite_steps  skip each optimizer step whose gradients are not all finite, as
//                               PyTorch's GradScaler does; stop after too many in a row
//
// terminate_on_nan checks every batch's loss on the device (a flag is or-ed in place, no
// synchronisation) and reads the flag every `check_every` optimizer steps and at the end of each
// epoch. When it is set, the fit stops, `triggered()` says at which step it was seen and
// `reason()` (also written to `stream`) what happened and what to try. check_every = 1 stops at
// the first bad step at the price of one synchronisation per step. The steps between the bad
// loss and the check have updated the weights with non-finite gradients: resume from the last
// checkpoint written before it.
//
// skip_nonfinite_steps needs the answer before each step, so it synchronises once per optimizer
// step; use it when occasional bad batches are expected. A skipped step leaves the weights and
// the optimizer's state (momentum, Adam's moments and step count) as they were; the scheduler
// still counts it, as with GradScaler.
//
//   kiln::callbacks{kiln::terminate_on_nan{.check_every = 50}}
//   kiln::callbacks{kiln::skip_nonfinite_steps{.max_in_a_row = 5}}
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct terminate_on_nan {
  std::int64_t check_every = 100;
  std::FILE* stream = stderr;  ///< where reason() is written when the fit stops; nullptr: nowhere

  /// The options by name, for kiln::config: "callbacks.terminate_on_nan.<option>".
  static constexpr std::string_view config_name = "terminate_on_nan";
  template <class F>
  void each_option(F&& f) { f("check_every", check_every); }

  struct state_type {
    torch::Tensor seen;  ///< on the device: was any loss not finite
    std::int64_t triggered_at = -1;
    std::int64_t last_checked = -1;
    std::string reason;
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context&);
  KILN_DECL void on_batch_end(kiln::context& ctx);
  void on_epoch_end(kiln::context& ctx) {
    if (state.seen.defined()) check(ctx);
  }

  /// The optimizer step at which a non-finite loss was found, or −1.
  [[nodiscard]] std::int64_t triggered() const noexcept { return state.triggered_at; }
  /// Why the fit stopped, or empty.
  [[nodiscard]] const std::string& reason() const noexcept { return state.reason; }

 private:
  KILN_DECL void check(kiln::context& ctx);
};

/// Skips each optimizer step whose gradients hold a NaN or an infinity, by clearing the
/// gradients so that the torch::optim optimizer leaves every parameter and its state alone.
/// After `max_in_a_row` skipped steps in a row the fit stops (something is broken, not
/// unlucky), with reason() saying so; 0: never stop.
struct skip_nonfinite_steps {
  std::int64_t max_in_a_row = 10;
  std::FILE* stream = stderr;  ///< where reason() is written when the fit stops; nullptr: nowhere

  struct state_type {
    std::vector<torch::Tensor> params;
    std::vector<torch::Tensor> finite;  // reused: its capacity stays after the first step
    std::int64_t skipped = 0, in_a_row = 0;
    std::string reason;
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context& ctx);

  KILN_DECL void on_before_optimizer_step(kiln::context& ctx);

  /// Optimizer steps skipped over all fits.
  [[nodiscard]] std::int64_t skipped() const noexcept { return state.skipped; }
  /// Why the fit stopped, or empty.
  [[nodiscard]] const std::string& reason() const noexcept { return state.reason; }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void terminate_on_nan::on_fit_begin(kiln::context&) {
  detail::check_option(check_every >= 1, "kiln::terminate_on_nan", "check_every", "at least 1", check_every);
  state.seen = torch::Tensor{};
  state.triggered_at = -1;
  state.last_checked = -1;
  state.reason.clear();
}

KILN_DECL void terminate_on_nan::on_batch_end(kiln::context& ctx) {
  torch::NoGradGuard no_grad;
  const auto bad = ctx.loss.detach().isfinite().logical_not();
  if (!state.seen.defined()) {
    state.seen = bad.clone();
  } else {
    state.seen.logical_or_(bad);
  }
  if (ctx.step != state.last_checked && ctx.step % check_every == 0) {  // once per step, not per batch
    state.last_checked = ctx.step;
    check(ctx);
  }
}

KILN_DECL void terminate_on_nan::check(kiln::context& ctx) {
  if (state.triggered_at < 0 && state.seen.item<bool>()) {
    state.triggered_at = ctx.step;
    state.reason = detail::concat(
        "kiln::terminate_on_nan: the training loss was NaN or infinite at or before optimizer step ", ctx.step,
        " (epoch ", ctx.epoch, ", checked every ", check_every,
        " steps); the fit stopped. The weights may hold non-finite values now: resume from the last "
        "checkpoint, and lower the learning rate, clip the gradients (kiln::clip_grad_norm) or look for NaN "
        "in the data.");
    if (stream != nullptr) {
      std::fprintf(stream, "%s\n", state.reason.c_str());
      std::fflush(stream);
    }
    ctx.request_stop();
  }
}

KILN_DECL void skip_nonfinite_steps::on_fit_begin(kiln::context& ctx) {
  detail::check_option(max_in_a_row >= 0, "kiln::skip_nonfinite_steps", "max_in_a_row", "at least 0 (0: never stop)",
                       max_in_a_row);
  state.params = ctx.model.parameters();
  state.in_a_row = 0;
  state.reason.clear();
}

KILN_DECL void skip_nonfinite_steps::on_before_optimizer_step(kiln::context& ctx) {
  torch::NoGradGuard no_grad;
  state.finite.clear();
  for (const auto& p : state.params) {
    if (p.grad().defined()) state.finite.push_back(p.grad().isfinite().all());
  }
  if (state.finite.empty() || torch::stack(state.finite).all().item<bool>()) {  // the one synchronisation
    state.in_a_row = 0;
    return;
  }
  for (auto& p : state.params) p.mutable_grad().reset();
  ++state.skipped;
  if (++state.in_a_row == max_in_a_row) {
    state.reason = detail::concat("kiln::skip_nonfinite_steps: ", max_in_a_row,
                                  " optimizer steps in a row had NaN or infinite gradients (the last at step ",
                                  ctx.step, ", epoch ", ctx.epoch,
                                  "); the fit stopped. Lower the learning rate or look for NaN in the data.");
    if (stream != nullptr) {
      std::fprintf(stream, "%s\n", state.reason.c_str());
      std::fflush(stream);
    }
    ctx.request_stop();
  }
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
