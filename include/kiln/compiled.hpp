// kiln/compiled.hpp — kiln's non-template functions, compiled once for a program built with
// KILN_SEPARATE_COMPILATION (see kiln/detail/linkage.hpp).
//
// Header-only use needs nothing of this. To keep these functions out of every translation unit
// of a program, define KILN_SEPARATE_COMPILATION for all of its translation units and include
// this header in exactly one of them, before any other kiln header:
//
//   // kiln_compiled.cpp, compiled with -DKILN_SEPARATE_COMPILATION like the rest
//   #include <kiln/compiled.hpp>
//
// With CMake, linking kiln::compiled instead of kiln::kiln does both. It lists every header that
// defines such functions; tests/compiled_part.cmake checks that none is missing.
#pragma once

#if !defined(KILN_SEPARATE_COMPILATION)
#error "<kiln/compiled.hpp> is for programs built with KILN_SEPARATE_COMPILATION: define it for every translation unit (CMake: link kiln::compiled), or leave this header out and use kiln header-only"
#endif
#if defined(KILN_DECL)
#error "<kiln/compiled.hpp> must come before any other kiln header in its translation unit"
#endif
#define KILN_COMPILING_DEFINITIONS

#include <kiln/augment/augment.hpp>
#include <kiln/augment/image.hpp>
#include <kiln/augment/mix.hpp>
#include <kiln/augment/transforms.hpp>
#include <kiln/augment/tta.hpp>
#include <kiln/callbacks/backbone_finetuning.hpp>
#include <kiln/callbacks/checkpoint_on_signal.hpp>
#include <kiln/callbacks/csv_logger.hpp>
#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/callbacks/gradient_clipping.hpp>
#include <kiln/callbacks/html_report.hpp>
// The JSON lines logger and kiln::config need nlohmann/json; without it a program cannot use
// them, and they are left out here.
#if __has_include(<nlohmann/json.hpp>)
#include <kiln/callbacks/jsonl_logger.hpp>
#endif
#include <kiln/callbacks/lr_monitor.hpp>
#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/callbacks/progress_bar.hpp>
#include <kiln/callbacks/tensorboard.hpp>
#include <kiln/callbacks/terminate_on_nan.hpp>
#if __has_include(<nlohmann/json.hpp>)
#include <kiln/config/config.hpp>
#endif
#include <kiln/core/context.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/cv/cross_validate.hpp>
#include <kiln/cv/splitters.hpp>
#include <kiln/data/batches.hpp>
#include <kiln/data/csv.hpp>
#include <kiln/data/idx.hpp>
#include <kiln/data/mnist.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/csv.hpp>
#include <kiln/detail/describe.hpp>
#include <kiln/detail/hyperparameters.hpp>
#include <kiln/detail/idx_header.hpp>
#include <kiln/detail/seal.hpp>
#include <kiln/detail/sha256.hpp>
#include <kiln/detail/writable_directory.hpp>
#include <kiln/ensemble/combiners.hpp>
#include <kiln/io/archive.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/io/submission.hpp>
#include <kiln/loss/loss.hpp>
#include <kiln/metrics/auroc.hpp>
#include <kiln/metrics/classification.hpp>
#include <kiln/metrics/inputs.hpp>
#include <kiln/metrics/metrics.hpp>
#include <kiln/models/pth.hpp>
#include <kiln/metrics/ranking.hpp>
#include <kiln/metrics/regression.hpp>
#include <kiln/model/weights.hpp>
#include <kiln/precision/autocast.hpp>
#include <kiln/precision/grad_scaler.hpp>
#include <kiln/trainer/checkpointing.hpp>
#include <kiln/trainer/trainer.hpp>
#if __has_include(<nlohmann/json.hpp>)
#include <kiln/tune/search_space.hpp>
#include <kiln/tune/trial_report.hpp>
#endif
