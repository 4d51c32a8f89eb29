// kiln/callbacks/terminate_on_nan.hpp — stop a fit whose training loss is NaN or infinite.
//
// Every batch's loss is checked on the device (a flag is or-ed in place, no synchronisation);
// the flag is read every `check_every` optimizer steps and at the end of each epoch. When it is
// set, the fit stops and `triggered()` says at which step it was seen. check_every = 1 stops at
// the first bad step at the price of one synchronisation per step.
//
//   kiln::callbacks{kiln::terminate_on_nan{.check_every = 50}}
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>

#include <torch/types.h>

#include <cstdint>
#include <string_view>

namespace kiln {

struct terminate_on_nan {
  std::int64_t check_every = 100;

  /// The options by name, for kiln::config: "callbacks.terminate_on_nan.<option>".
  static constexpr std::string_view config_name = "terminate_on_nan";
  template <class F>
  void each_option(F&& f) { f("check_every", check_every); }

  struct state_type {
    torch::Tensor seen;  ///< on the device: was any loss not finite
    std::int64_t triggered_at = -1;
    std::int64_t last_checked = -1;
  };
  state_type state{};  ///< running state (not an option)

  void on_fit_begin(kiln::context&) {
    detail::check_option(check_every >= 1, "kiln::terminate_on_nan", "check_every", "at least 1", check_every);
    state.seen = torch::Tensor{};
    state.triggered_at = -1;
    state.last_checked = -1;
  }
  void on_batch_end(kiln::context& ctx) {
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
  void on_epoch_end(kiln::context& ctx) {
    if (state.seen.defined()) check(ctx);
  }

  /// The optimizer step at which a non-finite loss was found, or −1.
  [[nodiscard]] std::int64_t triggered() const noexcept { return state.triggered_at; }

 private:
  void check(kiln::context& ctx) {
    if (state.triggered_at < 0 && state.seen.item<bool>()) {
      state.triggered_at = ctx.step;
      ctx.request_stop();
    }
  }
};

}  // namespace kiln
