// kiln/core/context.hpp — what a callback sees of a running fit.
#pragma once

#include <kiln/core/metric_values.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
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
  std::int64_t batch = 0;       ///< index of the current batch within its epoch; in on_epoch_begin,
                                ///< the batch a resumed epoch starts at (0: a whole epoch)
  std::int64_t batches_per_epoch = -1;  ///< when the training data has a size(); else −1
  std::int64_t step = 0;        ///< optimizer steps this trainer has taken, over all its fits

  /// This process's place among those that train the model together (the pipeline's
  /// distributed role, kiln/distributed/distributed.hpp): 0 of 1 in a single process.
  std::int64_t rank = 0;
  std::int64_t world_size = 1;

  /// True in the one process that writes files and prints: rank 0. Callbacks that declare
  /// `static constexpr bool rank_zero_only = true` (kiln's loggers, model_checkpoint,
  /// progress_bar) run only there, and save_checkpoint writes only there.
  [[nodiscard]] bool writes_files() const noexcept { return rank == 0; }

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

  /// The backbone's top-level children that kiln::freeze<N> froze and that are still frozen:
  /// no gradients, kept in eval mode. Their parameters stay in the optimizer's first group.
  std::vector<std::shared_ptr<torch::nn::Module>> frozen;

  /// Ends the fit after the current batch (from a batch hook) or epoch (from an epoch hook).
  void request_stop() noexcept { stop_requested_ = true; }
  [[nodiscard]] bool stop_requested() const noexcept { return stop_requested_; }

  /// Ends the fit at the next complete optimizer step, in the middle of the epoch, without
  /// validating (from an epoch hook: at the end of the epoch). The on_interrupt hooks then run,
  /// and a checkpoint written there resumes at that batch. kiln::checkpoint_on_signal uses it.
  void interrupt() noexcept { interrupted_ = true; }
  [[nodiscard]] bool interrupted() const noexcept { return interrupted_; }

  /// Makes the frozen children trainable from the next batch on, in train mode; the optimizer's
  /// parameter groups do not change (the backbone's group simply starts receiving gradients).
  KILN_DECL void unfreeze();

  /// Writes a checkpoint of the whole trainer to `path`, atomically (see kiln/trainer/checkpointing.hpp).
  /// Call it from on_checkpoint, where every callback's state for the epoch is final, or from
  /// on_interrupt: a trainer compiles its checkpoint writer in only when a callback has one of
  /// those hooks (kiln::trainer::has_checkpoint_hooks). In a process other than rank 0 it
  /// writes nothing: every process holds the same state, and one file is enough.
  KILN_DECL void save_checkpoint(const std::filesystem::path& path) const;

  /// Set by the trainer: what save_checkpoint calls. A plain pointer, called once an epoch at most.
  void bind_saver(void* owner, void (*save)(void*, const std::filesystem::path&)) noexcept {
    owner_ = owner;
    save_ = save;
  }

  /// Set by the trainer at the start of a fit and when it restores a checkpoint.
  void restore_stop(bool stopped) noexcept {
    stop_requested_ = stopped;
    interrupted_ = false;
  }

 private:
  bool stop_requested_ = false;
  bool interrupted_ = false;
  void* owner_ = nullptr;
  void (*save_)(void*, const std::filesystem::path&) = nullptr;
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void context::unfreeze() {
  for (const auto& child : frozen) {
    for (auto& p : child->parameters()) p.requires_grad_(true);
    child->train();
  }
  frozen.clear();
}

KILN_DECL void context::save_checkpoint(const std::filesystem::path& path) const {
  if (save_ == nullptr) {
    throw std::logic_error("kiln::context::save_checkpoint: this fit cannot write checkpoints; a "
                           "kiln::trainer compiles its checkpoint writer in only when a callback has "
                           "an on_checkpoint or on_interrupt hook, so write checkpoints from one of "
                           "those (a context made outside a trainer has nothing to save)");
  }
  if (writes_files()) save_(owner_, path);
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
