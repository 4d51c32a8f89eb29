// kiln/callbacks/model_checkpoint.hpp — keep the best checkpoints of a run, and the latest.
//
// Every `every_n_epochs` epochs, in on_checkpoint (after every callback's on_epoch_end, so the
// files hold the epoch's final state), it writes whole-trainer checkpoints into `directory`:
//   last.pt            the latest, replaced each time (when keep_last)
//   epoch-<e>-step-<s>.pt  the `keep_best` epochs with the best `monitor` value so far (e from 0);
//                      a new one that beats the worst kept replaces it, whose file is deleted
//                      only after the new one is safely written. keep_best = −1 keeps every one.
// A value that is NaN or infinite never counts as best, and an epoch whose training loss is not
// finite is not saved at all. Each file is written atomically, and
// this callback's own list of best files is part of each checkpoint, so a resumed run goes on
// keeping the same k files. Resume with fit(..., {.resume_from = dir / "last.pt"}).
//
//   kiln::callbacks{kiln::model_checkpoint{.directory = "run/ckpt", .monitor = "val/accuracy",
//                                          .mode = kiln::mode::max, .keep_best = 3}}
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/core/mode.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace kiln {

struct model_checkpoint {
  std::filesystem::path directory = "checkpoints";  ///< created if missing
  std::string monitor = "val/loss";  ///< the metric that ranks the epochs; empty: keep no best
  kiln::mode mode = kiln::mode::min;
  std::int64_t keep_best = 1;        ///< how many best epochs to keep; 0 none, −1 all
  bool keep_last = true;             ///< also keep last.pt, the latest state
  std::int64_t every_n_epochs = 1;

  /// It writes files: in a distributed fit only the process of rank 0 runs it.
  static constexpr bool rank_zero_only = true;

  /// The options by name, for kiln::config: "callbacks.model_checkpoint.<option>".
  static constexpr std::string_view config_name = "model_checkpoint";
  template <class F>
  void each_option(F&& f) {
    f("directory", directory);
    f("monitor", monitor);
    f("mode", mode);
    f("keep_best", keep_best);
    f("keep_last", keep_last);
    f("every_n_epochs", every_n_epochs);
  }

  struct state_type {
    std::vector<std::string> files;  ///< the best files kept, best first
    std::vector<double> values;      ///< their monitored values

    template <class F>
    void each(F&& f) {  // what a checkpoint keeps
      f("files", files);
      f("values", values);
    }
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context&);

  KILN_DECL void on_checkpoint(kiln::context& ctx);

  /// The best checkpoint kept so far; empty before the first.
  [[nodiscard]] std::filesystem::path best_path() const {
    return state.files.empty() ? std::filesystem::path{} : std::filesystem::path{state.files.front()};
  }
  /// Its monitored value (NaN before the first).
  [[nodiscard]] double best_value() const noexcept {
    return state.values.empty() ? std::nan("") : state.values.front();
  }

 private:
  [[nodiscard]] bool better(double a, double b) const noexcept { return mode == kiln::mode::min ? a < b : a > b; }
  [[nodiscard]] bool ranks(double value) const noexcept {
    return keep_best < 0 || state.values.size() < static_cast<std::size_t>(keep_best) || better(value, state.values.back());
  }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void model_checkpoint::on_fit_begin(kiln::context&) {
  constexpr std::string_view who = "kiln::model_checkpoint";
  detail::check_option(!directory.empty(), who, "directory", "a directory name", "\"\"");
  detail::check_option(keep_best >= -1, who, "keep_best", "-1 (all), 0 (none) or a count", keep_best);
  detail::check_option(every_n_epochs >= 1, who, "every_n_epochs", "at least 1", every_n_epochs);
  detail::check_option(keep_best == 0 || !monitor.empty(), who, "monitor",
                       "a metric name when keep_best is not 0", "\"\"");
  detail::check_option(keep_last || keep_best != 0, who, "keep_last",
                       "true when keep_best is 0, or nothing would be kept", "false");
  detail::create_directories(directory, who);
}

KILN_DECL void model_checkpoint::on_checkpoint(kiln::context& ctx) {
  if ((ctx.epoch + 1) % every_n_epochs != 0) return;
  // An epoch whose training loss is not finite (kiln::terminate_on_nan stops such a fit) is
  // not worth resuming from: the last good checkpoint stays.
  if (const double* loss = ctx.metrics.find("train/loss"); loss != nullptr && !std::isfinite(*loss)) return;
  std::string evicted;
  if (keep_best != 0) {
    const double value = ctx.metrics.at(monitor);  // throws, naming the metrics computed
    if (std::isfinite(value) && ranks(value)) {
      const auto file = (directory / detail::concat("epoch-", ctx.epoch, "-step-", ctx.step, ".pt")).string();
      const auto at = static_cast<std::size_t>(
          std::find_if(state.values.begin(), state.values.end(), [&](double v) { return better(value, v); }) -
          state.values.begin());
      state.files.insert(state.files.begin() + static_cast<std::ptrdiff_t>(at), file);
      state.values.insert(state.values.begin() + static_cast<std::ptrdiff_t>(at), value);
      if (keep_best > 0 && state.files.size() > static_cast<std::size_t>(keep_best)) {
        evicted = state.files.back();
        state.files.pop_back();
        state.values.pop_back();
      }
      ctx.save_checkpoint(file);  // holds the list above, itself included
    }
  }
  if (keep_last) ctx.save_checkpoint(directory / "last.pt");
  if (!evicted.empty()) {
    std::error_code ignored;  // a file the user already removed is no error
    std::filesystem::remove(evicted, ignored);
  }
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
