// kiln/schedule/scheduler.hpp — what a learning-rate scheduler is.
//
// A scheduler policy holds options only; what changes while it runs (its state) lives beside
// it, in kiln::lr_scheduler (kiln/schedule/lr_scheduler.hpp), which the trainer owns. A policy
// is one of two kinds:
//
//   a simple schedule, a pure function of the advance count t (= PyTorch's `last_epoch`) and
//   each group's learning rate, in PyTorch's recursive form:
//     kiln::interval interval;                                       (or `interval()`)
//     double next_lr(std::int64_t t, double current, double initial) const;     t = 1, 2, ...
//     (optional) double initial_lr(double base) const;  its value at t = 0, when a warmup hands over
//
//   a stateful schedule, which reads and writes all groups at once and keeps variables of its own:
//     kiln::interval interval;                                       (or `interval()`)
//     struct state_type { ...; template <class F> void each(F&& f); bool operator==(...) const; };
//     void start(state_type&, kiln::lr_groups, std::int64_t planned) const;      t = 0
//     void advance(state_type&, kiln::lr_groups, std::int64_t t) const;         t = 1, 2, ...
//   or, when it follows a metric (a MetricSchedule):
//     void advance(state_type&, kiln::lr_groups, std::int64_t t, double metric) const;
//     std::string_view monitored() const;  static constexpr std::string_view fixed_monitor;
//
// `start` is PyTorch's step at construction (it may set the first learning rate, as warmup and
// one-cycle do); `planned` is the number of advances the first fit will make, or 0 when unknown.
// `state_type::each(f)` calls f("name", field) for every field (each a double or an
// std::int64_t), so that lr_scheduler can save and load the state.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string_view>
#include <utility>

namespace kiln {

/// When a scheduler advances: once per epoch (after validation) or once per optimizer step.
enum class interval { epoch, step };

/// The names of the intervals, as kiln::config reads and writes them.
constexpr std::array<std::pair<std::string_view, interval>, 2> enum_names(interval) noexcept {
  return {{{"epoch", interval::epoch}, {"step", interval::step}}};
}

/// The parameter groups a stateful schedule drives, one entry per group (backbone first, then
/// head). The schedule reads `lr` and writes the next learning rates into it.
struct lr_groups {
  std::span<double> lr;             ///< the learning rates in force; the schedule writes the next ones
  std::span<const double> base_lr;  ///< as the optimizer was built (PyTorch's `initial_lr`)
  std::span<double> momentum;       ///< SGD/RMSprop momentum or Adam(W) beta1; empty when the optimizer has none
};

/// A schedule computed per group from the advance count and the current learning rate.
template <class S>
concept SimpleSchedule = requires(const S& s, std::int64_t t, double lr) {
  { s.next_lr(t, lr, lr) } -> std::convertible_to<double>;
};

/// A schedule with variables of its own, advanced without a metric.
template <class S>
concept StatefulSchedule = requires(const S& s, typename S::state_type& state, lr_groups groups, std::int64_t t) {
  s.start(state, groups, t);
  s.advance(state, groups, t);
};

/// A schedule with variables of its own, advanced with the value of the metric it monitors.
template <class S>
concept MetricSchedule = requires(const S& s, typename S::state_type& state, lr_groups groups, std::int64_t t,
                                  double metric) {
  s.start(state, groups, t);
  s.advance(state, groups, t, metric);
  { s.monitored() } -> std::convertible_to<std::string_view>;
  { S::fixed_monitor } -> std::convertible_to<std::string_view>;
};

/// Has an `interval` data member or an `interval()` member function.
template <class S>
concept HasInterval = requires(const S& s) {
  { s.interval } -> std::convertible_to<kiln::interval>;
} || requires(const S& s) {
  { s.interval() } -> std::convertible_to<kiln::interval>;
};

/// A scheduler policy: an interval, and a simple, stateful or metric schedule.
template <class S>
concept SchedulerPolicy = HasInterval<S> && (SimpleSchedule<S> || StatefulSchedule<S> || MetricSchedule<S>);

namespace detail {

template <HasInterval S>
constexpr kiln::interval interval_of(const S& s) noexcept {
  if constexpr (requires { { s.interval() } -> std::convertible_to<kiln::interval>; }) {
    return s.interval();
  } else {
    return s.interval;
  }
}

/// The metric a schedule's type fixes at compile time; empty when none (or not a MetricSchedule).
template <class S>
constexpr std::string_view fixed_monitor_of() noexcept {
  if constexpr (MetricSchedule<S>) {
    return S::fixed_monitor;
  } else {
    return {};
  }
}

/// Python's `a % b` for b > 0: never negative.
constexpr std::int64_t python_mod(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// Called from a consteval constructor, this makes the compiler stop at the call and show the
// line, whose string says what is wrong.
void compile_error(const char* message);

/// The interval of a schedule that can only advance once per epoch: converts from
/// kiln::interval::epoch, and rejects kiln::interval::step at compile time.
struct epoch_interval {
  consteval epoch_interval() = default;
  consteval epoch_interval(kiln::interval i) {  // NOLINT: implicit so that `.interval = ...` reads naturally
    if (i != kiln::interval::epoch) {
      compile_error("kiln::reduce_on_plateau advances once per epoch, after validation, on an epoch metric; "
                    "it cannot advance per optimizer step: remove `.interval = kiln::interval::step`");
    }
  }
  constexpr operator kiln::interval() const noexcept { return kiln::interval::epoch; }  // NOLINT
};

/// An empty state, for schedules that need none.
struct no_state {
  template <class F>
  void each(F&&) noexcept {}
  bool operator==(const no_state&) const = default;
};

template <class S>
struct own_state {
  using type = no_state;
};
template <class S>
  requires requires { typename S::state_type; }
struct own_state<S> {
  using type = typename S::state_type;
};
/// The state a schedule keeps beyond the learning rates: S::state_type, or none.
template <class S>
using own_state_t = typename own_state<S>::type;

inline constexpr double pi = std::numbers::pi;  // Python's math.pi, the same double

}  // namespace detail
}  // namespace kiln
