// kiln/kiln.hpp — everything kiln offers, in one include; except kiln/model/scripted.hpp,
// which brings in TorchScript's loader (+~2 s of compile time): include it where a TorchScript
// backbone is used; kiln/callbacks/jsonl_logger.hpp, which brings in nlohmann/json;
// kiln/execution/cuda_graph.hpp, which brings in the CUDA runtime's headers where they exist;
// and kiln/config/config.hpp (runtime configuration from the command line and JSON files),
// which brings in nlohmann/json: include it in the file that has main().
//
//   #include <kiln/kiln.hpp>
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::sgd{.lr = 0.1}, kiln::metrics<kiln::accuracy>{}};
#pragma once

#include <kiln/augment/augment.hpp>
#include <kiln/augment/image.hpp>
#include <kiln/augment/mix.hpp>
#include <kiln/augment/transforms.hpp>
#include <kiln/augment/tta.hpp>
#include <kiln/callbacks/backbone_finetuning.hpp>
#include <kiln/callbacks/callbacks.hpp>
#include <kiln/callbacks/checkpoint_on_signal.hpp>
#include <kiln/callbacks/csv_logger.hpp>
#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/gradient_clipping.hpp>
#include <kiln/callbacks/html_report.hpp>
#include <kiln/callbacks/lr_monitor.hpp>
#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/callbacks/progress_bar.hpp>
#include <kiln/callbacks/tensorboard.hpp>
#include <kiln/callbacks/terminate_on_nan.hpp>
#include <kiln/core/batch.hpp>
#include <kiln/core/context.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/core/mode.hpp>
#include <kiln/core/recipe.hpp>
#include <kiln/core/role.hpp>
#include <kiln/cv/cross_validate.hpp>
#include <kiln/cv/splitters.hpp>
#include <kiln/data/batches.hpp>
#include <kiln/data/csv.hpp>
#include <kiln/data/idx.hpp>
#include <kiln/data/mnist.hpp>
#include <kiln/distributed/distributed.hpp>
#include <kiln/ensemble/combiners.hpp>
#include <kiln/ensemble/ensemble.hpp>
#include <kiln/execution/execution.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/io/submission.hpp>
#include <kiln/loop/accumulate.hpp>
#include <kiln/loss/losses.hpp>
#include <kiln/metrics/accuracy.hpp>
#include <kiln/metrics/metrics.hpp>
#include <kiln/model/backbone.hpp>
#include <kiln/model/freeze.hpp>
#include <kiln/model/head.hpp>
#include <kiln/model/weights.hpp>
#include <kiln/optim/optimizers.hpp>
#include <kiln/precision/grad_scaler.hpp>
#include <kiln/precision/mixed_precision.hpp>
#include <kiln/precision/precision.hpp>
#include <kiln/schedule/schedulers.hpp>
#include <kiln/trainer/checkpointing.hpp>
#include <kiln/trainer/trainer.hpp>
#include <kiln/tune/one_of.hpp>
#include <kiln/version.hpp>
