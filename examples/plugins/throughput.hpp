// examples/plugins/throughput.hpp — a callback written outside kiln, the way a third party
// extends it: one header, no kiln source touched, dropped into any pipeline's kiln::callbacks.
//
// It times each epoch (training and validation) and reports "time/epoch_seconds" and
// "time/batches_per_second" (training batches over that time) in ctx.metrics, where every
// logger listed after it and the epoch history pick them up. Its running total of training time
// is a persistent state (a `state` with each()), so it survives a resume from a checkpoint. It
// reads no tensor, so it never synchronises the loop.
//
//   #include "plugins/throughput.hpp"
//   kiln::callbacks{acme::throughput{}, kiln::csv_logger{.path = "metrics.csv"}}
#pragma once

#include <kiln/core/context.hpp>

#include <chrono>
#include <cstdint>

namespace acme {

struct throughput {
  struct state_type {
    double total_seconds = 0.0;  ///< training time over all epochs, resumed runs included
    std::int64_t epochs = 0;

    template <class F>
    void each(F&& f) {  // what a kiln checkpoint keeps
      f("total_seconds", total_seconds);
      f("epochs", epochs);
    }
  };
  state_type state{};
  std::chrono::steady_clock::time_point epoch_start{};  ///< not kept: an epoch resumes afresh

  void on_epoch_begin(kiln::context&) { epoch_start = std::chrono::steady_clock::now(); }

  void on_epoch_end(kiln::context& ctx) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    state.total_seconds += seconds;
    ++state.epochs;
    ctx.metrics.set("time/epoch_seconds", seconds);
    if (ctx.batches_per_epoch > 0) {
      ctx.metrics.set("time/batches_per_second", static_cast<double>(ctx.batches_per_epoch) / seconds);
    }
  }

  [[nodiscard]] double mean_epoch_seconds() const noexcept {
    return state.epochs == 0 ? 0.0 : state.total_seconds / static_cast<double>(state.epochs);
  }
};

}  // namespace acme
