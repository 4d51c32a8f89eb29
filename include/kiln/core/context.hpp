// kiln/core/context.hpp — what a callback sees of a running fit.
#pragma once

#include <kiln/core/metric_values.hpp>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

/// The state of a fit, handed to every callback hook. One context lives for the whole fit;
/// the trainer updates its counters in place, so reading it costs nothing.
///
///   struct stop_at_step {
///     std::int64_t limit = 100;
///     void on_batch_end(kiln::context& ctx) { if (ctx.step >= limit) ctx.request_stop(); }
///   };
struct context {
  context(torch::nn::Module& model_, torch::optim::Optimizer& optimizer_) noexcept
      : model(model_), optimizer(optimizer_) {}

  torch::nn::Module& model;
  torch::optim::Optimizer& optimizer;

  std::int64_t epoch = 0;       ///< current epoch, from 0
  std::int64_t max_epochs = 0;  ///< epochs the fit was asked for
  std::int64_t batch = 0;       ///< index of the current batch within its epoch
  std::int64_t batches_per_epoch = -1;  ///< when the training data has a size(); else −1
  std::int64_t step = 0;        ///< optimizer steps this trainer has taken, over all its fits

  /// Learning rate of each parameter group (backbone first, then head), as now in force.
  std::vector<double> learning_rates;

  /// The run's effective runtime configuration as JSON text (see kiln/config/config.hpp);
  /// empty when the trainer was built without a kiln::config. Checkpoints and loggers save it.
  std::string hyperparameters;

  /// Latest epoch-level results: "train/loss", "val/loss", "val/<metric>".
  metric_values metrics;

  /// The current batch's loss, still on the device (not divided by accumulation).
  /// Valid in on_batch_end and on_before_optimizer_step. Reading its value synchronises.
  torch::Tensor loss;

  /// Ends the fit after the current batch (from a batch hook) or epoch (from an epoch hook).
  void request_stop() noexcept { stop_requested_ = true; }
  [[nodiscard]] bool stop_requested() const noexcept { return stop_requested_; }

 private:
  bool stop_requested_ = false;
};

}  // namespace kiln
