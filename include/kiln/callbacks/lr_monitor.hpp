// kiln/callbacks/lr_monitor.hpp — the learning rate of every parameter group, over time.
//
// Records (optimizer step, learning rate of each group) once per epoch or once per optimizer
// step, and puts the rates that were in force while the epoch trained into ctx.metrics as
// "lr/group_<i>" (group 0 the backbone, group 1 the head), as the loggers name them, so that
// every callback after it sees them. The epoch's rate is the one taken at its start: by the end
// of the epoch the scheduler has already moved on to the next epoch's rate.
//
//   kiln::callbacks{kiln::lr_monitor{.interval = kiln::interval::step}}
//   ...  trainer.callback_list().get<kiln::lr_monitor>().history()
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln {

struct lr_monitor {
  kiln::interval interval = kiln::interval::epoch;

  /// The options by name, for kiln::config: "callbacks.lr_monitor.<option>".
  static constexpr std::string_view config_name = "lr_monitor";
  template <class F>
  void each_option(F&& f) { f("interval", interval); }

  struct record {
    std::int64_t step;
    std::vector<double> learning_rates;
  };
  struct state_type {
    std::vector<double> epoch_rates;
    std::vector<record> history;
  };
  state_type state{};  ///< running state (not an option)

  void on_fit_begin(kiln::context& ctx) { state.history.push_back({ctx.step, ctx.learning_rates}); }
  void on_epoch_begin(kiln::context& ctx) { state.epoch_rates = ctx.learning_rates; }
  KILN_DECL void on_batch_end(kiln::context& ctx);
  KILN_DECL void on_epoch_end(kiln::context& ctx);

  [[nodiscard]] const std::vector<record>& history() const noexcept { return state.history; }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void lr_monitor::on_batch_end(kiln::context& ctx) {
  if (interval == kiln::interval::step && ctx.step != state.history.back().step) {
    state.history.push_back({ctx.step, ctx.learning_rates});
  }
}

KILN_DECL void lr_monitor::on_epoch_end(kiln::context& ctx) {
  if (interval == kiln::interval::epoch) state.history.push_back({ctx.step, ctx.learning_rates});
  for (std::size_t i = 0; i < state.epoch_rates.size(); ++i) {
    ctx.metrics.set(detail::learning_rate_name(i), state.epoch_rates[i]);
  }
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
