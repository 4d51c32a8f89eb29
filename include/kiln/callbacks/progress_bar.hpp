// kiln/callbacks/progress_bar.hpp — a tqdm-like progress line for a fit.
//
// On a terminal it redraws one line in place, at most every `refresh_seconds`:
//   epoch 2/5 [########------------] 187/469  40%  85.3 batch/s  ETA 0:03  loss 0.2345
// and ends each epoch with the epoch's results:
//   epoch 2/5 done in 5.5 s  train/loss 0.2101  val/loss 0.1822  val/accuracy 0.9470
// Into a file or a pipe it writes a plain line every `plain_every_seconds` instead, and the
// same end-of-epoch line. The batch count and ETA appear when the data has a size().
//
// The loss shown is read from the device only when the line is drawn (an exponential moving
// average of those reads), so the bar never adds a synchronisation per step.
//
//   kiln::callbacks{kiln::progress_bar{}}
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/linkage.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <unistd.h>

namespace kiln {

struct progress_bar {
  std::FILE* stream = stderr;
  double refresh_seconds = 0.2;
  double plain_every_seconds = 10.0;
  int width = 20;  ///< characters of the bar itself

  /// It prints: in a distributed fit only the process of rank 0 runs it.
  static constexpr bool rank_zero_only = true;

  /// The options by name, for kiln::config: "callbacks.progress_bar.<option>".
  static constexpr std::string_view config_name = "progress_bar";
  template <class F>
  void each_option(F&& f) { f("refresh_seconds", refresh_seconds); f("plain_every_seconds", plain_every_seconds); f("width", width); }

  struct state_type {
    bool terminal = false;
    std::chrono::steady_clock::time_point epoch_start{}, last_draw{};
    double smoothed_loss = std::nan("");
  };
  state_type state{};  ///< running state (not an option)

  void on_fit_begin(kiln::context&) { state.terminal = ::isatty(::fileno(stream)) == 1; }

  void on_epoch_begin(kiln::context&) {
    state.epoch_start = state.last_draw = clock::now();
    state.smoothed_loss = std::nan("");
  }

  KILN_DECL void on_batch_end(kiln::context& ctx);

  KILN_DECL void on_epoch_end(kiln::context& ctx);

  /// The progress line for `done` batches after `elapsed` seconds (public for tests).
  [[nodiscard]] KILN_DECL std::string line(const kiln::context& ctx, std::int64_t done, double elapsed,
                                           double loss) const;

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point from, clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
  }
  KILN_DECL static std::string fixed(double value, int digits);
  KILN_DECL static std::string clock_time(double seconds);

};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void progress_bar::on_batch_end(kiln::context& ctx) {
  const auto now = clock::now();
  const double since = seconds(state.last_draw, now);
  if (since < (state.terminal ? refresh_seconds : plain_every_seconds)) return;
  state.last_draw = now;
  if (ctx.loss.defined()) {
    const double loss = ctx.loss.item<double>();  // the one read per refresh
    state.smoothed_loss = std::isnan(state.smoothed_loss) ? loss : 0.7 * state.smoothed_loss + 0.3 * loss;
  }
  const std::string text = line(ctx, ctx.batch + 1, seconds(state.epoch_start, now), state.smoothed_loss);
  if (state.terminal) {
    std::fprintf(stream, "\r%s\033[K", text.c_str());
  } else {
    std::fprintf(stream, "%s\n", text.c_str());
  }
  std::fflush(stream);
}

KILN_DECL void progress_bar::on_epoch_end(kiln::context& ctx) {
  std::string text = "epoch " + std::to_string(ctx.epoch + 1) + "/" + std::to_string(ctx.max_epochs) +
                     " done in " + fixed(seconds(state.epoch_start, clock::now()), 1) + " s";
  for (const auto& [name, value] : ctx.metrics) text += "  " + name + " " + fixed(value, 4);
  std::fprintf(stream, state.terminal ? "\r%s\033[K\n" : "%s\n", text.c_str());
  std::fflush(stream);
}

KILN_DECL std::string progress_bar::line(const kiln::context& ctx, std::int64_t done, double elapsed,
                                         double loss) const {
  std::string text = "epoch " + std::to_string(ctx.epoch + 1) + "/" + std::to_string(ctx.max_epochs);
  const std::int64_t total = ctx.batches_per_epoch;
  if (total > 0) {
    const auto filled = static_cast<int>(static_cast<double>(width) * static_cast<double>(done) / static_cast<double>(total));
    text += " [" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(width - filled), '-') + "] " + std::to_string(done) + "/" +
            std::to_string(total) + "  " + std::to_string(100 * done / total) + "%";
  } else {
    text += "  " + std::to_string(done) + " batches";
  }
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  text += "  " + fixed(rate, 1) + " batch/s";
  if (total > 0 && rate > 0) text += "  ETA " + clock_time(static_cast<double>(total - done) / rate);
  if (!std::isnan(loss)) text += "  loss " + fixed(loss, 4);
  return text;
}

KILN_DECL std::string progress_bar::fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

KILN_DECL std::string progress_bar::clock_time(double seconds) {
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return buffer;
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
