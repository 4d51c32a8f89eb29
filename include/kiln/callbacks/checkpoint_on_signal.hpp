// kiln/callbacks/checkpoint_on_signal.hpp — Ctrl-C or a scheduler's SIGTERM ends a fit cleanly.
//
// While a fit runs, SIGINT and SIGTERM (by default) only raise a flag. The trainer sees it after
// the next complete optimizer step (or at the end of the epoch, when it arrives during
// validation), interrupts the fit there, and this callback writes a checkpoint of that moment to
// `path`; fit(..., {.resume_from = path}) then continues in the middle of the epoch and ends
// bit-identical to a run that was never interrupted (with data that replays its order, such as
// kiln::data::tensor_batches). Afterwards the signal's previous handler is put back and, with
// `reraise` (the default), the signal is raised again, so that the process ends as the sender
// intended — with the checkpoint safely on disk.
//
//   kiln::callbacks{kiln::model_checkpoint{.directory = "run"},
//                   kiln::checkpoint_on_signal{.path = "run/interrupted.pt"}}
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <csignal>
#include <filesystem>
#include <string_view>
#include <vector>

namespace kiln {
namespace detail {

// Written by the handler, read by the loop: the one thing a signal handler may safely do.
inline volatile std::sig_atomic_t pending_signal = 0;

extern "C" inline void remember_signal(int signal) { pending_signal = signal; }

}  // namespace detail

struct checkpoint_on_signal {
  std::filesystem::path path = "interrupted.pt";
  std::vector<int> signals = {SIGINT, SIGTERM};
  bool reraise = true;  ///< end the process with the signal once the checkpoint is written

  /// The options by name, for kiln::config: "callbacks.checkpoint_on_signal.<option>" (the
  /// signal numbers stay in code: they differ between systems).
  static constexpr std::string_view config_name = "checkpoint_on_signal";
  template <class F>
  void each_option(F&& f) { f("path", path); f("reraise", reraise); }

  struct state_type {
    std::vector<struct sigaction> previous;  ///< the handlers to put back
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context&);

  void on_batch_end(kiln::context& ctx) { poll(ctx); }
  void on_interrupt(kiln::context& ctx) { save(ctx); }  // in the middle of an epoch
  void on_checkpoint(kiln::context& ctx) {  // at the end of one: during validation, say
    poll(ctx);
    save(ctx);
  }

  KILN_DECL void on_fit_end(kiln::context&);

 private:
  static void poll(kiln::context& ctx) {
    if (detail::pending_signal != 0) ctx.interrupt();
  }
  void save(kiln::context& ctx) const {
    if (detail::pending_signal != 0) ctx.save_checkpoint(path);
  }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void checkpoint_on_signal::on_fit_begin(kiln::context&) {
  detail::check_option(!path.empty(), "kiln::checkpoint_on_signal", "path", "a file name", "\"\"");
  detail::pending_signal = 0;
  state.previous.clear();
  for (const int signal : signals) {
    struct sigaction action {}, old{};
    action.sa_handler = detail::remember_signal;
    sigemptyset(&action.sa_mask);
    if (::sigaction(signal, &action, &old) != 0) {
      throw std::invalid_argument(detail::concat("kiln::checkpoint_on_signal: cannot handle signal ", signal));
    }
    state.previous.push_back(old);
  }
}

KILN_DECL void checkpoint_on_signal::on_fit_end(kiln::context&) {
  const int signal = detail::pending_signal;
  for (std::size_t i = 0; i < state.previous.size(); ++i) ::sigaction(signals[i], &state.previous[i], nullptr);
  state.previous.clear();
  if (signal != 0 && reraise) std::raise(signal);
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
