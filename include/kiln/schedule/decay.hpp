// kiln/schedule/decay.hpp — learning rates that stay or fall by a factor.
//
//   kiln::constant_lr     the learning rate never changes (the default)
//   kiln::step_lr         × gamma every step_size advances              torch.optim.lr_scheduler.StepLR
//   kiln::multi_step_lr   × gamma at each milestone                     MultiStepLR
//   kiln::exponential_lr  × gamma at every advance                      ExponentialLR
//
// Each is a simple schedule in PyTorch's recursive form (see kiln/schedule/scheduler.hpp): the
// t-th advance multiplies the learning rate now in force, so changes made from outside (a
// callback) are kept, as in PyTorch.
//
//   kiln::step_lr{.step_size = 30, .gamma = 0.1}
//   kiln::multi_step_lr{.milestones = {30, 80}, .gamma = 0.1}
//   kiln::exponential_lr{.gamma = 0.999, .interval = kiln::interval::step}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace kiln {

/// The learning rate stays as the optimizer set it.
struct constant_lr {
  using kiln_role = role::scheduler;
  kiln::interval interval = kiln::interval::epoch;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("interval", interval); }

  [[nodiscard]] double next_lr(std::int64_t, double current, double) const noexcept { return current; }
};

/// Decays the learning rate by `gamma` every `step_size` advances; the first decay comes at
/// advance t = step_size, as in Python's StepLR (LibTorch's C++ StepLR decays one step later).
struct step_lr {
  using kiln_role = role::scheduler;
  std::int64_t step_size = 1;
  double gamma = 0.1;
  kiln::interval interval = kiln::interval::epoch;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("step_size", step_size); f("gamma", gamma); f("interval", interval); }

  void validate() const {
    detail::check_option(step_size >= 1, "kiln::step_lr", "step_size", "at least 1", step_size);
    detail::check_non_negative("kiln::step_lr", "gamma", gamma);
  }
  [[nodiscard]] double next_lr(std::int64_t t, double current, double) const noexcept {
    return t % step_size == 0 ? current * gamma : current;
  }
};

/// Decays the learning rate by `gamma` at each advance t listed in `milestones`; a milestone
/// listed twice decays by gamma² there, as in MultiStepLR.
struct multi_step_lr {
  using kiln_role = role::scheduler;
  std::vector<std::int64_t> milestones{};
  double gamma = 0.1;
  kiln::interval interval = kiln::interval::epoch;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("milestones", milestones); f("gamma", gamma); f("interval", interval); }

  void validate() const {
    for (const auto m : milestones) {
      detail::check_option(m >= 1, "kiln::multi_step_lr", "each milestone", "at least 1", m);
    }
    detail::check_non_negative("kiln::multi_step_lr", "gamma", gamma);
  }
  [[nodiscard]] double next_lr(std::int64_t t, double current, double) const {
    const auto times = std::count(milestones.begin(), milestones.end(), t);
    return times == 0 ? current : current * std::pow(gamma, static_cast<double>(times));
  }
};

/// Multiplies the learning rate by `gamma` at every advance, as ExponentialLR.
struct exponential_lr {
  using kiln_role = role::scheduler;
  double gamma = 0.9;
  kiln::interval interval = kiln::interval::epoch;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) { f("gamma", gamma); f("interval", interval); }

  void validate() const { detail::check_non_negative("kiln::exponential_lr", "gamma", gamma); }
  [[nodiscard]] double next_lr(std::int64_t, double current, double) const noexcept { return current * gamma; }
};

}  // namespace kiln
