// kiln/schedule/plateau.hpp — lower the learning rate when a metric stops improving.
//
//   kiln::reduce_on_plateau            as torch.optim.lr_scheduler.ReduceLROnPlateau
//
// It advances once per epoch, after validation, with the value of the metric it monitors:
// "val/loss" unless told otherwise. Name the metric in the type to have the compiler check that
// the pipeline computes it; name it at run time (`.monitor`) and kiln checks it before the
// first epoch. Either way a metric that is never computed is an error, never a silent no-op.
//
//   kiln::reduce_on_plateau{.factor = 0.5, .patience = 2}                       // watches "val/loss"
//   kiln::reduce_on_plateau<"val/accuracy">{.mode = kiln::monitor_mode::max}    // checked at compile time
//   kiln::reduce_on_plateau{.monitor = config.at("monitor"), .min_lr = {1e-6}}  // checked before epoch 1
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/name_chars.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

/// Whether a smaller (min) or a larger (max) value of a metric is better.
enum class monitor_mode { min, max };

/// How `threshold` measures a significant improvement: relative to the best value, or absolute.
enum class threshold_mode { rel, abs };

/// The names of the modes, as kiln::config reads and writes them.
constexpr std::array<std::pair<std::string_view, monitor_mode>, 2> enum_names(monitor_mode) noexcept {
  return {{{"min", monitor_mode::min}, {"max", monitor_mode::max}}};
}
constexpr std::array<std::pair<std::string_view, threshold_mode>, 2> enum_names(threshold_mode) noexcept {
  return {{{"rel", threshold_mode::rel}, {"abs", threshold_mode::abs}}};
}

/// ReduceLROnPlateau. After each epoch it compares the metric with the best value so far: an
/// improvement beyond `threshold` resets the count of bad epochs, anything else adds one; when
/// the count exceeds `patience` (PyTorch's `num_bad_epochs > patience`), each group's rate
/// becomes max(rate·factor, min_lr) unless that changes it by `eps` or less, and the next
/// `cooldown` epochs are not counted. With threshold t, "better" is, by mode and threshold mode:
/// min/rel: value < best·(1 − t);  min/abs: value < best − t;  max/rel: value > best·(1 + t);
/// max/abs: value > best + t — for negative metrics too, exactly as PyTorch.
///
/// `Monitor`, when given, fixes the metric at compile time; `monitor` then defaults to it and
/// may not name another.
template <detail::name_chars Monitor = "">
struct reduce_on_plateau {
  using kiln_role = role::scheduler;
  static constexpr std::string_view fixed_monitor = Monitor.view();

  /// "val/loss", "train/loss" or "val/<metric>" of a metric in the pipeline's kiln::metrics<...>.
  std::string monitor{fixed_monitor.empty() ? std::string_view{"val/loss"} : fixed_monitor};
  monitor_mode mode = monitor_mode::min;
  double factor = 0.1;        ///< in [0, 1)
  std::int64_t patience = 10;  ///< bad epochs tolerated before the rate falls
  double threshold = 1e-4;
  kiln::threshold_mode threshold_mode = kiln::threshold_mode::rel;
  std::int64_t cooldown = 0;           ///< epochs after a reduction that are not counted
  std::vector<double> min_lr = {0.0};  ///< one value for every group, or one per group
  double eps = 1e-8;                   ///< reductions of eps or less are skipped
  detail::epoch_interval interval{};   ///< always per epoch; kiln::interval::step does not compile

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("monitor", monitor);
    f("mode", mode);
    f("factor", factor);
    f("patience", patience);
    f("threshold", threshold);
    f("threshold_mode", threshold_mode);
    f("cooldown", cooldown);
    f("min_lr", min_lr);
    f("eps", eps);
  }

  struct state_type {
    double best = 0.0;
    std::int64_t bad_epochs = 0;
    std::int64_t cooldown_left = 0;
    template <class F>
    void each(F&& f) {
      f("best", best);
      f("bad_epochs", bad_epochs);
      f("cooldown_left", cooldown_left);
    }
    bool operator==(const state_type&) const = default;
  };

  void validate() const {
    constexpr std::string_view where = "kiln::reduce_on_plateau";
    detail::check_option(!monitor.empty(), where, "monitor", "the name of a metric such as \"val/loss\"", "\"\"");
    detail::check_option(fixed_monitor.empty() || monitor == fixed_monitor, where, "monitor",
                         detail::concat("\"", fixed_monitor, "\", the metric its template argument names (leave "
                                        ".monitor out, or drop the template argument)"),
                         detail::concat("\"", monitor, "\""));
    detail::check_option(factor >= 0.0 && factor < 1.0, where, "factor", "in [0, 1)", factor);
    detail::check_option(patience >= 0, where, "patience", "at least 0", patience);
    detail::check_non_negative(where, "threshold", threshold);
    detail::check_option(cooldown >= 0, where, "cooldown", "at least 0", cooldown);
    detail::check_option(!min_lr.empty(), where, "min_lr", "one value, or one per parameter group", "{}");
    for (const double m : min_lr) detail::check_non_negative(where, "each min_lr", m);
    detail::check_non_negative(where, "eps", eps);
  }

  [[nodiscard]] std::string_view monitored() const noexcept { return monitor; }

  void start(state_type& state, lr_groups groups, std::int64_t) const {
    detail::check_option(min_lr.size() == 1 || min_lr.size() == groups.lr.size(), "kiln::reduce_on_plateau",
                         "min_lr", detail::concat("one value or one per parameter group (", groups.lr.size(), ")"),
                         detail::concat(min_lr.size(), " values"));
    const double worst = std::numeric_limits<double>::infinity();
    state = {.best = mode == monitor_mode::min ? worst : -worst};
  }

  void advance(state_type& state, lr_groups groups, std::int64_t, double metric) const {
    if (is_better(metric, state.best)) {
      state.best = metric;
      state.bad_epochs = 0;
    } else {
      ++state.bad_epochs;
    }
    if (state.cooldown_left > 0) {
      --state.cooldown_left;
      state.bad_epochs = 0;  // bad epochs in cooldown do not count
    }
    if (state.bad_epochs > patience) {
      for (std::size_t i = 0; i < groups.lr.size(); ++i) {
        const double old_lr = groups.lr[i];
        const double new_lr = std::max(old_lr * factor, min_lr[min_lr.size() == 1 ? 0 : i]);
        if (old_lr - new_lr > eps) groups.lr[i] = new_lr;
      }
      state.cooldown_left = cooldown;
      state.bad_epochs = 0;
    }
  }

 private:
  [[nodiscard]] bool is_better(double value, double best) const noexcept {
    const bool rel = threshold_mode == kiln::threshold_mode::rel;
    if (mode == monitor_mode::min) return rel ? value < best * (1. - threshold) : value < best - threshold;
    return rel ? value > best * (threshold + 1.) : value > best + threshold;
  }
};

}  // namespace kiln
