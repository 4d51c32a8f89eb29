// kiln/schedule/warmup.hpp — a linear warmup before any other schedule.
//
//   kiln::warmup<S>   `length` advances of linear warmup, then S from its start
//
// kiln::warmup<S>{.length = W, .start_factor = f, .then = s} is, advance for advance,
//   SequentialLR(opt, [LinearLR(opt, start_factor=f, end_factor=1.0, total_iters=W), S'], milestones=[W])
// (S' the PyTorch scheduler of s): the rate starts at initial·f, rises by LinearLR's recursive
// steps for t = 1 .. W−1, and at t = W the schedule s starts over from the initial rate (its value
// at its own t = 0), its own count then being t − W. For kiln::reduce_on_plateau, which
// SequentialLR cannot hold, the hand-over is the same: at t = W the rate is the initial rate and
// the plateau logic starts afresh, seeing the metrics of epochs W+1, W+2, ...
// kiln::one_cycle has a warmup of its own (pct_start) and is not accepted here.
//
//   kiln::warmup<kiln::cosine_annealing>{.length = 5, .start_factor = 0.1, .then = {.t_max = 95}}
//   kiln::warmup<kiln::step_lr>{.length = 500, .then = {.step_size = 1000, .interval = kiln::interval::step}}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace kiln {

template <class S>
struct warmup;
struct one_cycle;

namespace detail {
template <class S>
inline constexpr bool is_warmup = false;
template <class S>
inline constexpr bool is_warmup<warmup<S>> = true;
}  // namespace detail

/// Linear warmup for `length` advances, then the schedule `then` (see the file comment for the
/// exact PyTorch composition). It advances when `then` does: `then.interval` decides.
template <class S>
struct warmup {
  static_assert(SchedulerPolicy<S>,
                "kiln::warmup<S>: S must be a kiln scheduler policy, such as kiln::cosine_annealing.");
  static_assert(!std::is_same_v<S, one_cycle>,
                "kiln::warmup<kiln::one_cycle>: one_cycle already warms up (over pct_start of its steps); "
                "use kiln::one_cycle alone.");
  static_assert(!detail::is_warmup<S>, "kiln::warmup<kiln::warmup<S>>: one warmup is enough; use kiln::warmup<S>.");

  using kiln_role = role::scheduler;
  using state_type = detail::own_state_t<S>;
  static constexpr std::string_view fixed_monitor = detail::fixed_monitor_of<S>();

  std::int64_t length = 5;         ///< advances of warmup (epochs or optimizer steps, as then.interval says)
  double start_factor = 1.0 / 3;  ///< the first rate is initial·start_factor (LinearLR's default 1/3)
  S then{};                        ///< the schedule that follows

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp); `then`'s own are
  /// nested under "then" ("scheduler.then.t_max").
  template <class F>
  void each_option(F&& f) { f("length", length); f("start_factor", start_factor); f("then", then); }

  void validate() const {
    detail::check_option(length >= 1, "kiln::warmup", "length", "at least 1", length);
    detail::check_option(start_factor > 0.0 && start_factor <= 1.0, "kiln::warmup", "start_factor", "in (0, 1]",
                         start_factor);
    if constexpr (requires { then.validate(); }) then.validate();
  }
  [[nodiscard]] kiln::interval interval() const noexcept { return detail::interval_of(then); }
  [[nodiscard]] std::string_view monitored() const noexcept
    requires MetricSchedule<S>
  {
    return then.monitored();
  }

  void start(state_type&, lr_groups groups, std::int64_t) const {
    for (std::size_t i = 0; i < groups.lr.size(); ++i) groups.lr[i] = groups.base_lr[i] * start_factor;
  }
  void advance(state_type& state, lr_groups groups, std::int64_t t) const
    requires(!MetricSchedule<S>)
  {
    if (t < length) return rise(groups, t);
    if (t == length) return hand_over(state, groups);
    if constexpr (SimpleSchedule<S>) {
      for (std::size_t i = 0; i < groups.lr.size(); ++i) {
        groups.lr[i] = then.next_lr(t - length, groups.lr[i], groups.base_lr[i]);
      }
    } else {
      then.advance(state, groups, t - length);
    }
  }
  void advance(state_type& state, lr_groups groups, std::int64_t t, double metric) const
    requires MetricSchedule<S>
  {
    if (t < length) return rise(groups, t);
    if (t == length) return hand_over(state, groups);
    then.advance(state, groups, t - length, metric);
  }

 private:
  // LinearLR's recursive step towards end_factor = 1, in its order of operations.
  void rise(lr_groups groups, std::int64_t t) const {
    const double factor = 1. + (1.0 - start_factor) / (static_cast<double>(length) * start_factor +
                                                         static_cast<double>(t - 1) * (1.0 - start_factor));
    for (double& lr : groups.lr) lr = lr * factor;
  }
  // SequentialLR's then.step(0): the rate is the schedule's value at its own t = 0.
  void hand_over(state_type& state, lr_groups groups) const {
    for (std::size_t i = 0; i < groups.lr.size(); ++i) {
      if constexpr (requires { then.initial_lr(1.0); }) {
        groups.lr[i] = then.initial_lr(groups.base_lr[i]);
      } else {
        groups.lr[i] = groups.base_lr[i];
      }
    }
    if constexpr (!SimpleSchedule<S>) then.start(state, groups, 0);
  }
};

}  // namespace kiln
