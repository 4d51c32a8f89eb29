// kiln/schedule/lr_scheduler.hpp — a scheduler policy at work on an optimizer.
//
// kiln::lr_scheduler<S, Options> is what PyTorch calls the scheduler object: the policy S
// bound to a torch::optim optimizer whose groups have options of type Options, with the state
// that makes the sequence go on (advances so far, learning rates, momenta, S's own variables).
// The trainer owns one (trainer.scheduler()); it can also drive an optimizer by hand:
//
//   torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.1).momentum(0.9));
//   kiln::lr_scheduler<kiln::one_cycle, torch::optim::SGDOptions> s{{.total_steps = 100}, sgd};
//   s.start();                              // PyTorch's step at construction
//   for (...) { sgd.step(); s.advance(); }  // plateau: s.advance(metric)
//
// Its state saves and loads (state()/load_state(), or save()/load() with a torch::serialize
// archive), so that a resumed run continues the identical sequence.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln {

/// Everything a scheduler needs to continue its sequence. Saved with lr_scheduler::state().
template <class S>
struct scheduler_state {
  bool started = false;
  std::int64_t advances = 0;     ///< PyTorch's last_epoch
  std::vector<double> base_lr;   ///< per group, as the optimizer was built
  std::vector<double> lr;        ///< per group, as in force when saved
  std::vector<double> momentum;  ///< per group; empty when the optimizer has none
  detail::own_state_t<S> own{};  ///< S's own variables (plateau: best value, bad epochs, cooldown)

  bool operator==(const scheduler_state&) const = default;
};

namespace detail {

/// True when the optimizer options carry a momentum (SGD, RMSprop) or betas (Adam, AdamW).
template <class Options>
inline constexpr bool has_momentum =
    requires(Options& o) { o.momentum(); } || requires(Options& o) { std::get<0>(o.betas()); };

template <class Options>
double momentum_of(const Options& o) {
  if constexpr (requires { o.momentum(); }) {
    return o.momentum();
  } else {
    return std::get<0>(o.betas());
  }
}

template <class Options>
void set_momentum(Options& o, double value) {
  if constexpr (requires { o.momentum(); }) {
    o.momentum(value);
  } else {
    o.betas(std::make_tuple(value, std::get<1>(o.betas())));
  }
}

}  // namespace detail

/// A scheduler policy driving an optimizer (see the file comment).
template <SchedulerPolicy S, class Options>
class lr_scheduler {
 public:
  using policy_type = S;
  using state_type = scheduler_state<S>;
  /// True when each advance takes the value of a monitored metric (reduce_on_plateau).
  static constexpr bool monitors_metric = MetricSchedule<S>;

  /// Binds `policy` (checked here) to `optimizer`, whose current rates become the base rates.
  lr_scheduler(S policy, torch::optim::Optimizer& optimizer) : policy_(std::move(policy)), optimizer_(&optimizer) {
    if constexpr (requires { policy_.validate(); }) policy_.validate();
    const std::size_t groups = optimizer.param_groups().size();
    state_.lr.resize(groups);
    state_.momentum.resize(detail::has_momentum<Options> ? groups : 0);
    read();
    state_.base_lr = state_.lr;
  }

  [[nodiscard]] const S& policy() const noexcept { return policy_; }
  [[nodiscard]] kiln::interval interval() const noexcept { return detail::interval_of(policy_); }
  [[nodiscard]] bool started() const noexcept { return state_.started; }
  [[nodiscard]] std::int64_t advances() const noexcept { return state_.advances; }
  /// Per group, as the scheduler last set them.
  [[nodiscard]] const std::vector<double>& learning_rates() const noexcept { return state_.lr; }
  [[nodiscard]] const std::vector<double>& momenta() const noexcept { return state_.momentum; }

  /// PyTorch's step at construction (t = 0): sets the first rates of warmup and one-cycle.
  /// `planned` is the number of advances to come, when known (one_cycle without total_steps needs it).
  void start(std::int64_t planned = 0) {
    if (state_.started) throw std::logic_error("kiln::lr_scheduler::start: the scheduler has started already");
    read();
    if constexpr (!SimpleSchedule<S>) policy_.start(state_.own, groups(), planned);
    state_.started = true;
    write();
  }

  /// The next advance of a schedule that follows no metric.
  void advance()
    requires(!monitors_metric)
  {
    const std::int64_t t = next();
    if constexpr (SimpleSchedule<S>) {
      for (std::size_t i = 0; i < state_.lr.size(); ++i) {
        state_.lr[i] = policy_.next_lr(t, state_.lr[i], state_.base_lr[i]);
      }
    } else {
      policy_.advance(state_.own, groups(), t);
    }
    write();
  }

  /// The next advance of a schedule that follows a metric, with the metric's latest value.
  void advance(double metric)
    requires monitors_metric
  {
    const std::int64_t t = next();
    policy_.advance(state_.own, groups(), t, metric);
    write();
  }

  [[nodiscard]] const state_type& state() const noexcept { return state_; }

  /// Restores a state taken from a scheduler of the same policy, and the optimizer's rates
  /// (and momenta) with it.
  void load_state(state_type state) {
    if (state.lr.size() != state_.lr.size() || state.base_lr.size() != state_.lr.size() ||
        state.momentum.size() != state_.momentum.size()) {
      throw std::invalid_argument(detail::concat(
          "kiln::lr_scheduler::load_state: the state is for ", state.lr.size(), " parameter groups (",
          state.momentum.size(), " momenta), the optimizer has ", state_.lr.size(), " (", state_.momentum.size(), ")"));
    }
    state_ = std::move(state);
    write();
  }

  /// Writes the state into `archive` (keys: started, advances, base_lr, lr, momentum, and S's own).
  void save(torch::serialize::OutputArchive& archive) const {
    archive.write("started", state_.started);
    archive.write("advances", state_.advances);
    archive.write("base_lr", state_.base_lr);
    archive.write("lr", state_.lr);
    archive.write("momentum", state_.momentum);
    auto own = state_.own;
    own.each([&](const char* key, const auto& value) { archive.write(key, value); });
  }

  /// Reads a state written by save() and restores it as load_state() does.
  void load(torch::serialize::InputArchive& archive) {
    state_type state;
    auto value = [&](const char* key) {
      c10::IValue v;
      archive.read(key, v);
      return v;
    };
    state.started = value("started").toBool();
    state.advances = value("advances").toInt();
    state.base_lr = value("base_lr").toDoubleVector();
    state.lr = value("lr").toDoubleVector();
    state.momentum = value("momentum").toDoubleVector();
    state.own.each([&](const char* key, auto& field) {
      const c10::IValue v = value(key);
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(field)>, double>) {
        field = v.toDouble();
      } else {
        field = v.toInt();
      }
    });
    load_state(std::move(state));
  }

 private:
  lr_groups groups() noexcept { return {state_.lr, state_.base_lr, state_.momentum}; }

  std::int64_t next() {
    if (!state_.started) {
      throw std::logic_error("kiln::lr_scheduler::advance: call start() first (the trainer does, at its first fit)");
    }
    read();
    return ++state_.advances;
  }

  Options& options(std::size_t group) { return static_cast<Options&>(optimizer_->param_groups()[group].options()); }

  // The optimizer's rates may have been changed from outside since the last advance; the
  // recursive forms continue from them, as PyTorch's do.
  void read() {
    for (std::size_t i = 0; i < state_.lr.size(); ++i) {
      state_.lr[i] = options(i).lr();
      if constexpr (detail::has_momentum<Options>) state_.momentum[i] = detail::momentum_of(options(i));
    }
  }
  void write() {
    for (std::size_t i = 0; i < state_.lr.size(); ++i) {
      options(i).lr(state_.lr[i]);
      if constexpr (detail::has_momentum<Options>) detail::set_momentum(options(i), state_.momentum[i]);
    }
  }

  S policy_;
  torch::optim::Optimizer* optimizer_;
  state_type state_;
};

}  // namespace kiln
