// kiln/tune/trial_report.hpp — a program's side of a hyperparameter study (tools/kiln_optuna.py).
//
// The study driver runs the program once per trial, with the trial's values as --set options and
// the environment variable KILN_TRIAL_LOG naming a file. This callback, in the trainer the study
// tunes, appends to that file one JSON object per line as the fit runs, each written whole:
//
//   {"config": {"optimizer.type": "sgd", "optimizer.sgd.lr": 0.01, ...}}   the effective
//                                          configuration, when the fit begins (what a replay
//                                          passes back with --config)
//   {"epoch": 1, "metrics": {"train/loss": 0.41, "val/auroc": 0.97}}      after each epoch
//                                          (epochs done; a value that is not finite is null)
//   {"end": "completed"}  or  {"end": "pruned"}                           when the fit ends
//
// The driver reads the epochs as they come and reports them to Optuna; when its pruner says
// stop, it sends SIGUSR1. The fit then ends after the epoch it is in (the loggers and checkpoints
// of that epoch are written as usual), the "pruned" line is written, and the program exits with
// status 75 (trial_report::pruned_status), which the driver reads as a pruned trial; a request
// that arrives during the last epoch comes too late, and the trial completes. List this callback
// last, so that every other callback's on_fit_end has run by then.
//
// Once a fit has begun under KILN_TRIAL_LOG, SIGUSR1 stays handled for the rest of the process:
// a prune request that arrives as the fit ends must not kill a program whose trial is complete.
// Without KILN_TRIAL_LOG (a run outside a study) it does nothing and handles no signal.
//
//   kiln::callbacks{kiln::csv_logger{}, kiln::tune::trial_report{}}
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/detail/linkage.hpp>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace kiln::detail {

// Set by the handler of SIGUSR1; read at the end of each epoch.
inline volatile std::sig_atomic_t prune_requested = 0;

extern "C" inline void remember_prune_request(int) { prune_requested = 1; }

}  // namespace kiln::detail

namespace kiln::tune {

struct trial_report {
  /// The exit status of a program whose trial was pruned (EX_TEMPFAIL of <sysexits.h>).
  static constexpr int pruned_status = 75;

  // Every process of a distributed fit handles the prune request, so that all of them stop
  // after the same epoch; the process of rank 0 writes the file.

  struct state_type {
    std::filesystem::path path;  ///< KILN_TRIAL_LOG; empty: not in a study
    bool pruned = false;         ///< the fit was stopped at a prune request
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context& ctx);
  KILN_DECL void on_epoch_end(kiln::context& ctx);
  KILN_DECL void on_fit_end(kiln::context& ctx);

 private:
  KILN_DECL void write(const nlohmann::ordered_json& record) const;
};

}  // namespace kiln::tune

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::tune {

KILN_DECL void trial_report::on_fit_begin(kiln::context& ctx) {
  const char* path = std::getenv("KILN_TRIAL_LOG");
  state.path = path == nullptr ? std::filesystem::path{} : std::filesystem::path{path};
  state.pruned = false;
  if (state.path.empty()) return;
  if (ctx.writes_files()) detail::prepare_log_file(state.path, "kiln::tune::trial_report (KILN_TRIAL_LOG)");
  detail::prune_requested = 0;
  struct sigaction action {};
  action.sa_handler = detail::remember_prune_request;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGUSR1, &action, nullptr);
  nlohmann::ordered_json record;
  auto& configuration = record["config"];
  configuration = nlohmann::ordered_json::parse(ctx.hyperparameters, nullptr, /*allow_exceptions=*/false);
  if (ctx.hyperparameters.empty() || configuration.is_discarded()) configuration = nlohmann::ordered_json::object();
  if (ctx.writes_files()) write(record);
}

KILN_DECL void trial_report::on_epoch_end(kiln::context& ctx) {
  if (state.path.empty()) return;
  nlohmann::ordered_json record;
  record["epoch"] = ctx.epoch + 1;
  auto& metrics = record["metrics"];
  metrics = nlohmann::ordered_json::object();
  for (const auto& [name, value] : ctx.metrics) metrics[name] = value;  // NaN and inf: null
  if (ctx.writes_files()) write(record);
  // Only here: a request that arrives after the last epoch leaves the completed trial complete.
  if (detail::prune_requested != 0 && ctx.epoch + 1 < ctx.max_epochs) {
    state.pruned = true;
    ctx.request_stop();
  }
}

KILN_DECL void trial_report::on_fit_end(kiln::context& ctx) {
  if (state.path.empty()) return;
  if (ctx.writes_files()) write({{"end", state.pruned ? "pruned" : "completed"}});
  if (state.pruned) {
    // Out at once: what the program does after its fit is for completed trials, and running the
    // destructors of static objects while LibTorch's threads live could turn the status into an
    // abort. The logs are whole files already; stdio is flushed.
    std::fflush(nullptr);
    std::_Exit(pruned_status);
  }
}

KILN_DECL void trial_report::write(const nlohmann::ordered_json& record) const {
  detail::append_to_file(state.path, record.dump() + '\n', "kiln::tune::trial_report");
}

}  // namespace kiln::tune

#endif  // KILN_FUNCTION_DEFINITIONS
