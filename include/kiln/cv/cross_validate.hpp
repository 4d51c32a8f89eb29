// kiln/cv/cross_validate.hpp — K-fold cross-validation of a pipeline: a fresh trainer per fold,
// out-of-fold (OOF) predictions, pooled and per-fold scores, each fold's best checkpoint, and a
// run that resumes where it was stopped.
//
//   auto make = [](const kiln::cv::fold_info& fold) {
//     return kiln::trainer{kiln::backbone<Net>{}, kiln::adamw{.lr = 1e-3},
//                          kiln::metrics<kiln::accuracy>{},
//                          kiln::callbacks{kiln::model_checkpoint{.directory = fold.directory,
//                                                                 .monitor = "val/accuracy",
//                                                                 .mode = kiln::mode::max}}};
//   };
//   auto cv = kiln::cv::cross_validate(make, x, y, kiln::cv::stratified_k_fold{.folds = 5},
//                                      {.fit = {.epochs = 10}, .directory = "run/cv"});
//   cv.oof_metrics.at("oof/accuracy");   // every metric of the pipeline, on all the OOF predictions
//   cv.summary;                          // each fold value's mean and standard deviation
//
// Fold k trains a trainer that make_trainer builds for it, after torch::manual_seed(seed): every
// fold starts from the same initial weights, optimizer, schedule and callback states, and nothing
// one fold does reaches the next (the trainer of each fold is built, fitted and destroyed in
// turn). Fold k's fit is a plain fit on tensor_batches of its training and held-out samples, so
// it equals, bit for bit, the fit a user would write for that split with the same seed
// (tests/cv/cross_validate.cpp checks it). PyTorch Lightning's K-fold example, by contrast,
// reused one trainer, and early stopping's state and the optimizer leaked from fold to fold.
//
// Held-out predictions come from the fold's best checkpoint when the pipeline has a
// kiln::model_checkpoint with a monitor (the model one would submit), else from the fit's final
// weights. With a directory, fold k writes to <directory>/fold_<k>/ (its model_checkpoint must
// write there: fold_info::directory), and a run started again resumes: finished folds are read
// back from their checkpoints, and the fold that was stopped resumes from its last.pt, at the
// epoch where it stopped; the result equals the uninterrupted run's.
//
// The pooled OOF scores are computed once over all OOF predictions by the pipeline's own metrics
// (trainer::metric_list), reported as "oof/<metric>"; the per-fold values are the validation
// values ("val/loss", "val/<metric>") the fit computed for the epoch whose weights made the
// fold's predictions (no pass over the data again), and their summary is the mean and the
// population standard deviation (numpy's std, ddof = 0).
// With repeated_stratified_k_fold each sample is held out once per repetition: its OOF
// prediction is the mean over the repetitions, and oof_fold names its fold in the first.
#pragma once

#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/cv/splitters.hpp>
#include <kiln/data/batches.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/trainer/configuration.hpp>
#include <kiln/trainer/trainer.hpp>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln::cv {

/// What make_trainer is told about the fold it builds a trainer for.
struct fold_info {
  std::int64_t index = 0;  ///< from 0, in the splitter's order
  /// Where the fold's checkpoints go, <directory>/fold_<index>; empty when the run has no
  /// directory. With one, the trainer's kiln::model_checkpoint must write here.
  std::filesystem::path directory;
};

/// How each fold is trained.
struct options {
  kiln::fit_options fit;  ///< the epochs of every fold (resuming goes through `directory`)
  data::batch_options train{.batch_size = 64, .shuffle = true};  ///< each fold's training batches
  data::batch_options validation{.batch_size = 256};             ///< its held-out batches
  /// Checkpoints of fold k in <directory>/fold_<k>/; a run started again resumes from them.
  /// Empty: no checkpoints kept by the run, and no resuming.
  std::filesystem::path directory;
  std::uint64_t seed = 0;  ///< torch::manual_seed(seed) before each fold's trainer is built
  torch::Device device{torch::kCPU};  ///< where each fold trains
};

struct fold_result {
  cv::fold split;                          ///< its training and held-out indices
  kiln::history history;                   ///< every epoch's values, as fit returned them
  std::filesystem::path best_checkpoint;   ///< model_checkpoint's best file; empty without one
  /// "val/loss", "val/<metric>" of the epoch whose weights predict: the best checkpoint's, else
  /// the last (with early_stopping's restore_best_weights, the weights are the best epoch's and
  /// these the last's: use a model_checkpoint to keep the two together)
  metric_values metrics;
  torch::Tensor predictions;               ///< its held-out samples' outputs, in split.test's order, CPU
};

/// The mean and the population standard deviation of one value over the folds.
struct summary_entry {
  std::string name;
  double mean = 0;
  double std = 0;
};

struct result {
  std::vector<fold_result> folds;
  torch::Tensor oof_predictions;  ///< [N, ...]: each sample's held-out output, in sample order
  torch::Tensor oof_fold;         ///< [N] int64: the fold that held each sample out
  metric_values oof_metrics;      ///< "oof/<metric>" over all OOF predictions at once
  std::vector<summary_entry> summary;  ///< each value of the folds' metrics, in their order

  /// The summary entry named `name` ("val/accuracy"); throws std::out_of_range naming those there are.
  [[nodiscard]] KILN_DECL const summary_entry& fold_summary(std::string_view name) const;
};

}  // namespace kiln::cv

namespace kiln::detail {

/// The first kiln::model_checkpoint among a pipeline's callbacks, or null.
template <class Callbacks>
const model_checkpoint* checkpoint_callback(Callbacks& callbacks) {
  const model_checkpoint* found = nullptr;
  callbacks.each([&](auto& callback) {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(callback)>, model_checkpoint>) {
      if (found == nullptr) found = &callback;
    }
  });
  return found;
}

/// A fold's model_checkpoint must write where no other fold writes, and, when the run resumes
/// (options.directory set), in fold.directory; `used` holds the earlier folds' directories.
KILN_DECL void check_fold_checkpoints(const model_checkpoint* callback, const cv::fold_info& fold, bool resumes,
                                      std::vector<std::filesystem::path>& used);
KILN_DECL void check_cross_validation(const torch::Tensor& inputs, const torch::Tensor& targets,
                                      const cv::options& options);
KILN_DECL std::vector<cv::summary_entry> summarize(const std::vector<cv::fold_result>& folds);

/// The "val/..." values among an epoch's.
KILN_DECL metric_values validation_values(const metric_values& epoch);

}  // namespace kiln::detail

namespace kiln::cv {

/// Trains a fresh trainer per fold of `splitter` over (inputs, targets) and scores the held-out
/// predictions; see the file comment. make_trainer(const fold_info&) returns a kiln::trainer.
template <class MakeTrainer, class Splitter>
result cross_validate(MakeTrainer&& make_trainer, const torch::Tensor& inputs, const torch::Tensor& targets,
                      const Splitter& splitter, const options& options = {}) {
  detail::check_cross_validation(inputs, targets, options);
  using trainer_type = std::remove_cvref_t<decltype(make_trainer(std::declval<const fold_info&>()))>;
  using metrics_type = typename trainer_type::metrics_policy;

  result out;
  const auto splits = splitter.split(targets);
  const auto per_repetition = static_cast<std::int64_t>(splits.size()) / std::int64_t{splitter.repeats};
  std::optional<metrics_type> metrics;
  torch::Tensor held_out_count;
  std::vector<std::filesystem::path> checkpoint_directories;
  for (std::size_t k = 0; k < splits.size(); ++k) {
    fold_info info{.index = static_cast<std::int64_t>(k)};
    if (!options.directory.empty()) info.directory = options.directory / ("fold_" + std::to_string(k));
    torch::manual_seed(options.seed);
    auto trainer = make_trainer(info);
    trainer.to(options.device);
    const model_checkpoint* checkpoints = detail::checkpoint_callback(trainer.callback_list());
    detail::check_fold_checkpoints(checkpoints, info, !options.directory.empty(), checkpoint_directories);

    const auto& split = splits[k];
    data::tensor_batches train{inputs.index_select(0, split.train), targets.index_select(0, split.train), options.train};
    data::tensor_batches held_out{inputs.index_select(0, split.test), targets.index_select(0, split.test),
                                  options.validation};
    kiln::fit_options fit = options.fit;
    if (const auto last = info.directory / "last.pt"; !info.directory.empty() && std::filesystem::exists(last)) {
      fit.resume_from = last;
    }
    fold_result fold{.split = split, .history = trainer.fit(train, held_out, fit)};
    if (checkpoints != nullptr && !checkpoints->best_path().empty()) {
      fold.best_checkpoint = checkpoints->best_path();
      trainer.load_checkpoint(fold.best_checkpoint);
    }
    fold.metrics = detail::validation_values(trainer.state().metrics);
    fold.predictions = trainer.predict(held_out);

    if (!metrics) metrics.emplace(trainer.metric_list());
    if (!out.oof_predictions.defined()) {
      auto shape = fold.predictions.sizes().vec();
      shape[0] = inputs.size(0);
      out.oof_predictions = torch::zeros(shape, fold.predictions.options());
      out.oof_fold = torch::full({inputs.size(0)}, -1, torch::kLong);
      held_out_count = torch::zeros({inputs.size(0)}, torch::kLong);
    }
    out.oof_predictions.index_add_(0, split.test, fold.predictions);
    held_out_count.index_add_(0, split.test, torch::ones_like(split.test));
    if (static_cast<std::int64_t>(k) < per_repetition) out.oof_fold.index_fill_(0, split.test, static_cast<std::int64_t>(k));
    out.folds.push_back(std::move(fold));
  }
  if (held_out_count.max().item<std::int64_t>() > 1) {  // repeated: the mean over the repetitions
    auto shape = std::vector<std::int64_t>(static_cast<std::size_t>(out.oof_predictions.dim()), 1);
    shape[0] = -1;
    out.oof_predictions.div_(held_out_count.to(out.oof_predictions.scalar_type()).reshape(shape));
  }
  metrics->reset(torch::kCPU);
  metrics->update(out.oof_predictions, targets.to(torch::kCPU));
  metrics->compute("oof/", out.oof_metrics);
  out.summary = detail::summarize(out.folds);
  return out;
}

}  // namespace kiln::cv

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::cv {

KILN_DECL const summary_entry& result::fold_summary(std::string_view name) const {
  for (const auto& entry : summary) {
    if (entry.name == name) return entry;
  }
  std::string known;
  for (const auto& entry : summary) known += (known.empty() ? "" : ", ") + entry.name;
  throw std::out_of_range(detail::concat("kiln::cv::result: no fold value named '", name,
                                               "'; the folds report: ", known.empty() ? "(none)" : known));
}

}  // namespace kiln::cv

namespace kiln::detail {

KILN_DECL void check_fold_checkpoints(const model_checkpoint* callback, const cv::fold_info& fold, bool resumes,
                                      std::vector<std::filesystem::path>& used) {
  const auto refuse = [&](const std::string& problem) {
    throw std::invalid_argument(concat(
        "kiln::cv::cross_validate: the trainer built for fold ", fold.index, problem,
        "; give it kiln::model_checkpoint{.directory = fold.directory} (fold being the kiln::cv::fold_info make_trainer "
        "receives) and set options.directory"));
  };
  if (resumes && callback == nullptr) {
    refuse(" has no kiln::model_checkpoint, but options.directory is set, so each fold must keep its checkpoints "
           "there to resume from");
  }
  if (callback == nullptr) return;
  if (callback->directory.empty()) refuse("'s kiln::model_checkpoint has no directory");
  if (resumes && callback->directory != fold.directory) {
    refuse(concat(" writes its checkpoints to '", callback->directory.string(), "', not to its own '",
                  fold.directory.string(), "'"));
  }
  if (resumes && !callback->keep_last) refuse("'s kiln::model_checkpoint has keep_last = false, which resuming needs");
  for (const auto& earlier : used) {
    if (earlier == callback->directory) {
      refuse(concat(" writes its checkpoints to '", callback->directory.string(),
                    "', where an earlier fold wrote its own: its best checkpoint would replace theirs"));
    }
  }
  used.push_back(callback->directory);
}

KILN_DECL void check_cross_validation(const torch::Tensor& inputs, const torch::Tensor& targets,
                                      const cv::options& options) {
  if (!inputs.defined() || !targets.defined() || inputs.dim() == 0 || targets.dim() == 0 ||
      inputs.size(0) != targets.size(0)) {
    throw std::invalid_argument(concat(
        "kiln::cv::cross_validate: inputs and targets must have one row per sample, the same number of rows, got ",
        inputs.defined() ? describe(inputs) : std::string{"an undefined tensor"}, " and ",
        targets.defined() ? describe(targets) : std::string{"an undefined tensor"}));
  }
  if (!options.fit.resume_from.empty()) {
    throw std::invalid_argument(
        "kiln::cv::cross_validate: options.fit.resume_from is set, but a cross-validation resumes each fold "
        "from its own directory; set options.directory instead and start the run again");
  }
}

KILN_DECL metric_values validation_values(const metric_values& epoch) {
  metric_values out;
  for (const auto& [name, value] : epoch) {
    if (name.starts_with("val/")) out.set(name, value);
  }
  return out;
}

KILN_DECL std::vector<cv::summary_entry> summarize(const std::vector<cv::fold_result>& folds) {
  std::vector<cv::summary_entry> out;
  if (folds.empty()) return out;
  for (const auto& [name, first] : folds.front().metrics) {
    cv::summary_entry entry{.name = name};
    double sum = 0;
    for (const auto& fold : folds) sum += fold.metrics.at(name);
    entry.mean = sum / static_cast<double>(folds.size());
    double squares = 0;
    for (const auto& fold : folds) squares += (fold.metrics.at(name) - entry.mean) * (fold.metrics.at(name) - entry.mean);
    entry.std = std::sqrt(squares / static_cast<double>(folds.size()));
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
