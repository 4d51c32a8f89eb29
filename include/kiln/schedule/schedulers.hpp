// kiln/schedule/schedulers.hpp — learning-rate scheduler policies.
//
//   kiln::constant_lr  the learning rate never changes (the default)
//   kiln::step_lr      multiply by gamma every step_size intervals, as torch.optim.lr_scheduler.StepLR
//
// A scheduler advances once per epoch (after validation) or once per optimizer step, as its
// `interval` says. Its t-th advance (t = 1, 2, ...) maps each parameter group's current
// learning rate to the next one, in PyTorch's recursive form:
//   double next_lr(std::int64_t t, double current, double initial) const;
//
//   kiln::step_lr{.step_size = 30, .gamma = 0.1}
//   kiln::step_lr{.step_size = 1000, .gamma = 0.5, .interval = kiln::interval::step}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>

#include <concepts>
#include <cstdint>

namespace kiln {

/// When a scheduler advances.
enum class interval { epoch, step };

/// A scheduler policy: an `interval` member and a `next_lr` as above.
template <class S>
concept SchedulerPolicy = requires(const S& s, std::int64_t t, double lr) {
  { s.interval } -> std::convertible_to<kiln::interval>;
  { s.next_lr(t, lr, lr) } -> std::convertible_to<double>;
};

/// The learning rate stays as the optimizer set it.
struct constant_lr {
  using kiln_role = role::scheduler;
  kiln::interval interval = kiln::interval::epoch;
  [[nodiscard]] double next_lr(std::int64_t, double current, double) const noexcept {
    return current;
  }
};

/// Decays the learning rate by `gamma` every `step_size` advances; the first decay comes at
/// advance t = step_size, as in Python's StepLR.
struct step_lr {
  using kiln_role = role::scheduler;
  std::int64_t step_size = 1;
  double gamma = 0.1;
  kiln::interval interval = kiln::interval::epoch;

  void validate() const {
    detail::check_option(step_size >= 1, "kiln::step_lr", "step_size", "at least 1", step_size);
    detail::check_non_negative("kiln::step_lr", "gamma", gamma);
  }
  [[nodiscard]] double next_lr(std::int64_t t, double current, double) const noexcept {
    return t % step_size == 0 ? current * gamma : current;
  }
};

}  // namespace kiln
