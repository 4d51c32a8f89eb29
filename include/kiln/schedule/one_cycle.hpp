// kiln/schedule/one_cycle.hpp — the 1cycle policy: up to the peak rate, then far below the start.
//
//   kiln::one_cycle   as torch.optim.lr_scheduler.OneCycleLR, momentum (or Adam's beta1) cycled too
//
// The peak rate of each parameter group is the rate the optimizer was built with (the policy's
// lr; lr × lr_ratio for a backbone under a head): PyTorch's `max_lr`, one per group. The cycle
// starts at peak / div_factor and ends at peak / (div_factor · final_div_factor).
//
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::sgd{.lr = 0.1, .momentum = 0.9}, kiln::one_cycle{}};
//   t.fit(train, {.epochs = 10});  // total_steps: 10 × optimizer steps per epoch
//   kiln::one_cycle{.total_steps = 5000, .anneal = kiln::anneal::linear, .three_phase = true}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace kiln {

/// How one-cycle moves between two values within a phase.
enum class anneal { cos, linear };

/// The names of the annealing shapes, as kiln::config reads and writes them.
constexpr std::array<std::pair<std::string_view, anneal>, 2> enum_names(anneal) noexcept {
  return {{{"cos", anneal::cos}, {"linear", anneal::linear}}};
}

/// OneCycleLR. Phases (by advance t = 0 .. total_steps):
///   two-phase:   t ≤ pct_start·T − 1: initial → peak;  then: peak → minimum
///   three_phase: t ≤ pct_start·T − 1: initial → peak;  t ≤ 2·pct_start·T − 2: peak → initial;
///                then: initial → minimum
/// with momentum moving the opposite way, between max_momentum and base_momentum, when
/// `cycle_momentum` (the optimizer must have momentum or betas: sgd, rmsprop, adam, adamw).
/// Advancing more than total_steps times is an error, as in PyTorch.
struct one_cycle {
  using kiln_role = role::scheduler;

  std::int64_t total_steps = 0;  ///< advances in the cycle; 0: the advances the first fit makes
  double pct_start = 0.3;        ///< share of the cycle spent rising
  kiln::anneal anneal = kiln::anneal::cos;
  bool three_phase = false;
  double div_factor = 25.0;         ///< initial = peak / div_factor
  double final_div_factor = 1e4;    ///< minimum = initial / final_div_factor
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  kiln::interval interval = kiln::interval::step;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("total_steps", total_steps);
    f("pct_start", pct_start);
    f("anneal", anneal);
    f("three_phase", three_phase);
    f("div_factor", div_factor);
    f("final_div_factor", final_div_factor);
    f("cycle_momentum", cycle_momentum);
    f("base_momentum", base_momentum);
    f("max_momentum", max_momentum);
    f("interval", interval);
  }

  struct state_type {
    std::int64_t total_steps = 0;  ///< as fixed when the cycle started
    template <class F>
    void each(F&& f) {
      f("total_steps", total_steps);
    }
    bool operator==(const state_type&) const = default;
  };

  void validate() const {
    constexpr std::string_view where = "kiln::one_cycle";
    detail::check_option(total_steps >= 0, where, "total_steps", "at least 0 (0: count the fit's advances)",
                         total_steps);
    detail::check_in_range(where, "pct_start", pct_start, 0.0, 1.0);
    detail::check_positive(where, "div_factor", div_factor);
    detail::check_positive(where, "final_div_factor", final_div_factor);
    detail::check_non_negative(where, "base_momentum", base_momentum);
    detail::check_non_negative(where, "max_momentum", max_momentum);
  }

  void start(state_type& state, lr_groups groups, std::int64_t planned) const {
    constexpr std::string_view where = "kiln::one_cycle";
    if (total_steps == 0 && planned == 0) {
      throw std::invalid_argument(
          "kiln::one_cycle: set .total_steps; the training data does not tell its number of batches, so kiln "
          "cannot count the advances of the fit");
    }
    detail::check_option(total_steps == 0 || planned <= total_steps, where, "total_steps",
                         detail::concat("at least the ", planned, " advances this fit makes"), total_steps);
    if (cycle_momentum && groups.momentum.empty()) {
      throw std::invalid_argument(
          "kiln::one_cycle: cycle_momentum needs an optimizer with momentum or betas (kiln::sgd, kiln::rmsprop, "
          "kiln::adam, kiln::adamw); set .cycle_momentum = false");
    }
    state.total_steps = total_steps > 0 ? total_steps : planned;
    const auto ends = phase_ends(state.total_steps);
    double begin = 0;
    for (std::size_t i = 0; i < phases(); ++i) {
      if (ends[i] == begin) {
        throw std::invalid_argument(detail::concat(
            "kiln::one_cycle: phase ", i + 1, " of the cycle is empty (pct_start ", pct_start, " of ",
            state.total_steps, " steps); PyTorch divides by zero there: change pct_start or total_steps"));
      }
      begin = ends[i];
    }
    set(state, groups, 0);
  }

  void advance(state_type& state, lr_groups groups, std::int64_t t) const {
    if (t > state.total_steps) {
      throw std::out_of_range(detail::concat("kiln::one_cycle: advanced ", t, " times, but the cycle has ",
                                             state.total_steps, " steps; raise .total_steps"));
    }
    set(state, groups, t);
  }

 private:
  [[nodiscard]] std::size_t phases() const noexcept { return three_phase ? 3 : 2; }

  // The last advance of each phase, as PyTorch computes it (floats, not rounded).
  [[nodiscard]] std::array<double, 3> phase_ends(std::int64_t total) const noexcept {
    const double steps = static_cast<double>(total);
    const double rise_end = pct_start * steps - 1;
    if (three_phase) return {rise_end, 2 * pct_start * steps - 2, steps - 1};
    return {rise_end, steps - 1, steps - 1};
  }

  [[nodiscard]] double interpolate(double from, double to, double pct) const {
    if (anneal == kiln::anneal::cos) return to + (from - to) / 2.0 * (std::cos(detail::pi * pct) + 1);
    return (to - from) * pct + from;
  }

  void set(const state_type& state, lr_groups groups, std::int64_t t) const {
    const auto ends = phase_ends(state.total_steps);
    const double step = static_cast<double>(t);
    std::size_t phase = 0;
    double begin = 0;
    while (phase + 1 < phases() && step > ends[phase]) begin = ends[phase++];
    const double pct = (step - begin) / (ends[phase] - begin);
    for (std::size_t i = 0; i < groups.lr.size(); ++i) {
      const double peak = groups.base_lr[i], initial = peak / div_factor, minimum = initial / final_div_factor;
      // Phase by phase: the rate's (from, to) and the momentum's.
      const std::array<std::array<double, 2>, 3> lr = {{{initial, peak}, {peak, three_phase ? initial : minimum},
                                                        {initial, minimum}}};
      groups.lr[i] = interpolate(lr[phase][0], lr[phase][1], pct);
      if (cycle_momentum) {
        const std::array<std::array<double, 2>, 3> momentum = {
            {{max_momentum, base_momentum}, {base_momentum, max_momentum}, {max_momentum, max_momentum}}};
        groups.momentum[i] = interpolate(momentum[phase][0], momentum[phase][1], pct);
      }
    }
  }
};

}  // namespace kiln
