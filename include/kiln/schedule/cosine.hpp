// kiln/schedule/cosine.hpp — cosine-shaped learning rates.
//
//   kiln::cosine_annealing      half a cosine from the initial rate down to eta_min over t_max
//                               advances, and back up after it        CosineAnnealingLR
//   kiln::cosine_warm_restarts  the same, restarting every t_0, t_0·t_mult, ... advances
//                                                                     CosineAnnealingWarmRestarts
//
//   kiln::cosine_annealing{.t_max = 100, .eta_min = 1e-5, .interval = kiln::interval::step}
//   kiln::cosine_warm_restarts{.t_0 = 10, .t_mult = 2}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <cmath>
#include <cstdint>

namespace kiln {
namespace detail {

// PyTorch's closed form, eta_min + (base - eta_min)·(1 + cos(π·t/T))/2, in its order of operations.
inline double cosine_closed_form(double eta_min, double base, std::int64_t t, std::int64_t period) {
  return eta_min + (base - eta_min) * (1 + std::cos(pi * static_cast<double>(t) / static_cast<double>(period))) / 2;
}

}  // namespace detail

/// Cosine annealing in PyTorch's recursive form (CosineAnnealingLR's get_lr): each advance
/// scales the distance to eta_min by the ratio of consecutive cosine terms, so the rate is
/// eta_min + (initial − eta_min)·(1 + cos(π·t/t_max))/2 while nothing else changes it. Past
/// t_max it does not stop: it rises again, with period 2·t_max, exactly as PyTorch (where the
/// ratio would divide by zero, at t = (2k+1)·t_max + 1, PyTorch adds the step instead; so does kiln).
struct cosine_annealing {
  using kiln_role = role::scheduler;
  std::int64_t t_max = 1;  ///< advances from the initial rate down to eta_min
  double eta_min = 0.0;
  kiln::interval interval = kiln::interval::epoch;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("t_max", t_max); f("eta_min", eta_min); f("interval", interval); }

  void validate() const {
    detail::check_option(t_max >= 1, "kiln::cosine_annealing", "t_max", "at least 1", t_max);
    detail::check_non_negative("kiln::cosine_annealing", "eta_min", eta_min);
  }
  [[nodiscard]] double next_lr(std::int64_t t, double current, double initial) const {
    if (detail::python_mod(t - 1 - t_max, 2 * t_max) == 0) {
      return current + (initial - eta_min) * (1 - std::cos(detail::pi / static_cast<double>(t_max))) / 2;
    }
    const double tt = static_cast<double>(t), period = static_cast<double>(t_max);
    return (1 + std::cos(detail::pi * tt / period)) / (1 + std::cos(detail::pi * (tt - 1) / period)) *
               (current - eta_min) +
           eta_min;
  }
  /// The value at t = 0 when a warmup hands over (PyTorch's closed form, as SequentialLR's step(0)).
  [[nodiscard]] double initial_lr(double base) const { return detail::cosine_closed_form(eta_min, base, 0, t_max); }
};

/// Cosine annealing with warm restarts (SGDR), as CosineAnnealingWarmRestarts stepped without
/// an epoch argument: the rate follows a cosine from the initial rate to eta_min over t_0
/// advances, restarts, and each later cycle lasts t_mult times longer than the one before.
struct cosine_warm_restarts {
  using kiln_role = role::scheduler;
  std::int64_t t_0 = 1;     ///< advances in the first cycle
  std::int64_t t_mult = 1;  ///< growth of each cycle's length
  double eta_min = 0.0;
  kiln::interval interval = kiln::interval::epoch;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("t_0", t_0);
    f("t_mult", t_mult);
    f("eta_min", eta_min);
    f("interval", interval);
  }

  void validate() const {
    detail::check_option(t_0 >= 1, "kiln::cosine_warm_restarts", "t_0", "at least 1", t_0);
    detail::check_option(t_mult >= 1, "kiln::cosine_warm_restarts", "t_mult", "at least 1", t_mult);
    detail::check_non_negative("kiln::cosine_warm_restarts", "eta_min", eta_min);
  }
  [[nodiscard]] double next_lr(std::int64_t t, double, double initial) const {
    // PyTorch counts T_cur up by one per advance and subtracts T_i (then grows it) when T_cur
    // reaches T_i; doing the same subtractions at once gives the same integers.
    std::int64_t cycle = t_0, into_cycle = t;
    if (t_mult == 1) {
      into_cycle = t % t_0;
    } else {
      while (into_cycle >= cycle) {
        into_cycle -= cycle;
        cycle *= t_mult;
      }
    }
    return detail::cosine_closed_form(eta_min, initial, into_cycle, cycle);
  }
  [[nodiscard]] double initial_lr(double base) const { return detail::cosine_closed_form(eta_min, base, 0, t_0); }
};

}  // namespace kiln
