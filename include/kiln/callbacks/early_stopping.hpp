// kiln/callbacks/early_stopping.hpp — stop when a monitored metric stops improving.
//
// After each epoch's validation, the monitored value improves when it beats the best so far by
// more than min_delta (mode min: value < best − min_delta; mode max: value > best + min_delta).
// Each epoch without improvement adds one to a counter that an improvement resets; the fit stops
// when the counter reaches `patience` — with patience 3, after the third epoch in a row without
// improvement (PyTorch Lightning's rule). A value that is NaN or infinite stops the fit at once
// when `stop_on_non_finite` (the default). With `restore_best_weights`, the model's parameters
// and buffers from the best epoch are copied back when the fit ends.
//
//   kiln::callbacks{kiln::early_stopping{.monitor = "val/loss", .patience = 3}}
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/core/mode.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct early_stopping {
  std::string monitor = "val/loss";
  kiln::mode mode = kiln::mode::min;
  double min_delta = 0.0;
  std::int64_t patience = 3;
  bool stop_on_non_finite = true;
  bool restore_best_weights = false;

  /// The options by name, for kiln::config: "callbacks.early_stopping.<option>".
  static constexpr std::string_view config_name = "early_stopping";
  template <class F>
  void each_option(F&& f) {
    f("monitor", monitor);
    f("mode", mode);
    f("min_delta", min_delta);
    f("patience", patience);
    f("stop_on_non_finite", stop_on_non_finite);
    f("restore_best_weights", restore_best_weights);
  }

  struct state_type {
    double best = std::numeric_limits<double>::infinity();
    std::int64_t wait = 0;         ///< epochs in a row without improvement
    std::int64_t best_epoch = -1;
    std::int64_t stopped_epoch = -1;
    std::vector<torch::Tensor> best_weights;

    template <class F>
    void each(F&& f) {  // what a checkpoint keeps
      f("best", best);
      f("wait", wait);
      f("best_epoch", best_epoch);
      f("stopped_epoch", stopped_epoch);
      f("best_weights", best_weights);
    }
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context&);

  KILN_DECL void on_epoch_end(kiln::context& ctx);

  KILN_DECL void on_fit_end(kiln::context& ctx);

  /// The best value seen, the epoch it was seen (−1: none), the epoch the fit was stopped (−1: not).
  [[nodiscard]] double best() const noexcept { return state.best; }
  [[nodiscard]] std::int64_t best_epoch() const noexcept { return state.best_epoch; }
  [[nodiscard]] std::int64_t stopped_epoch() const noexcept { return state.stopped_epoch; }

 private:
  [[nodiscard]] bool improves(double value) const noexcept {
    return mode == kiln::mode::min ? value < state.best - min_delta : value > state.best + min_delta;
  }
  void stop(kiln::context& ctx) {
    state.stopped_epoch = ctx.epoch;
    ctx.request_stop();
  }
  KILN_DECL static std::vector<torch::Tensor> state_of(torch::nn::Module& model);
  void remember(torch::nn::Module& model) {
    state.best_weights.clear();
    for (const auto& t : state_of(model)) state.best_weights.push_back(t.detach().clone());
  }

};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void early_stopping::on_fit_begin(kiln::context&) {
  detail::check_non_negative("kiln::early_stopping", "min_delta", min_delta);
  detail::check_option(patience >= 1, "kiln::early_stopping", "patience", "at least 1", patience);
  state.best = mode == kiln::mode::min ? std::numeric_limits<double>::infinity()
                                  : -std::numeric_limits<double>::infinity();
  state.wait = 0;
  state.best_epoch = -1;
  state.stopped_epoch = -1;
  state.best_weights.clear();
}

KILN_DECL void early_stopping::on_epoch_end(kiln::context& ctx) {
  const double* value = ctx.metrics.find(monitor);
  if (value == nullptr) (void)ctx.metrics.at(monitor);  // throws, naming the metrics computed
  if (!std::isfinite(*value)) {
    if (stop_on_non_finite) stop(ctx);
    return;
  }
  if (improves(*value)) {
    state.best = *value;
    state.best_epoch = ctx.epoch;
    state.wait = 0;
    if (restore_best_weights) remember(ctx.model);
    return;
  }
  if (++state.wait >= patience) stop(ctx);
}

KILN_DECL void early_stopping::on_fit_end(kiln::context& ctx) {
  if (!restore_best_weights || state.best_weights.empty()) return;
  torch::NoGradGuard no_grad;
  auto current = state_of(ctx.model);
  for (std::size_t i = 0; i < current.size(); ++i) current[i].copy_(state.best_weights[i]);
}

KILN_DECL std::vector<torch::Tensor> early_stopping::state_of(torch::nn::Module& model) {
  auto tensors = model.parameters();
  for (auto& b : model.buffers()) tensors.push_back(b);
  return tensors;
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
