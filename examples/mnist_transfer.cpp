// Transfer learning on real MNIST digits.
//
// 1. Pretrain a small CNN on digits 0–4 and save its backbone.
// 2. A second pipeline loads that backbone, freezes its first block, puts a new head on it and
//    fine-tunes on digits 5–9 with gradient accumulation and a lower backbone learning rate,
//    on training digits augmented on the fly (a random crop of the digit padded by 2 pixels, and
//    a small random rotation and shift; no flips, which would change a digit's meaning).
//    Each epoch is timed by a plugin callback (examples/plugins/throughput.hpp) and checkpointed;
//    Ctrl-C ends the run after a checkpoint, and --set fit.resume_from=<out>/checkpoints/last.pt
//    (or .../interrupted.pt) continues it.
// 3. Writes a submission (id, predicted digit) for the test digits 5–9 with the weights of the
//    best epoch's checkpoint, and reports their accuracy, without and with test-time
//    augmentation (the digits also turned by ±8° and shifted by a pixel, probabilities averaged).
//
// Model selection never sees the test digits: each stage validates on a stratified fifth of its
// training digits (kiln::cv::stratified_k_fold's first fold), the best epoch is chosen there,
// and the test digits are predicted once, at the end.
//
// Usage: mnist_transfer [data-dir] [output-dir] [--config run.json] [--set key=value ...]
//   (defaults: data/mnist and .). The runtime numbers come from kiln::config: the fine-tuning
//   pipeline's options (optimizer.lr, scheduler.gamma, backbone.lr_ratio, fit.epochs, ...) and
//   the program's own (data.batch_size, pretrain.*), e.g.
//     mnist_transfer --set optimizer.lr=0.002 --set fit.epochs=3 --config run.json
//   The effective configuration is printed, and saved beside every log. --print-search-space
//   prints what a study may tune (the optimizer's learning rate and weight decay, the backbone's
//   learning-rate ratio, the scheduler's gamma, the batch size) for tools/kiln_optuna.py.
//
// The same program trains data-parallel under torchrun (kiln::data_parallel): each process
// trains on its share of the digits, gradients are averaged, and rank 0 prints, writes the
// checkpoints and logs, and predicts the test digits:
//   torchrun --standalone --nproc_per_node=2 --no_python -r 1 -t 1 ./mnist_transfer data/mnist out
#include <kiln/config/config.hpp>
#include <kiln/cv/splitters.hpp>
#include <kiln/distributed/data_parallel.hpp>
#include <kiln/kiln.hpp>
#include <kiln/tune/search_space.hpp>
#include <kiln/tune/trial_report.hpp>
#include <torch/torch.h>

#include "plugins/throughput.hpp"  // a third-party callback: one header outside kiln

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <utility>

namespace {

// Three blocks; `depth` lets kiln::freeze<N> check N at compile time.
struct SmallCnnImpl : torch::nn::Module {
  static constexpr std::size_t depth = 3;

  SmallCnnImpl() {
    using namespace torch::nn;
    block1 = register_module("block1", Sequential(Conv2d(Conv2dOptions(1, 16, 3).padding(1)),
                                                  BatchNorm2d(16), ReLU(), MaxPool2d(2)));
    block2 = register_module("block2", Sequential(Conv2d(Conv2dOptions(16, 32, 3).padding(1)),
                                                  BatchNorm2d(32), ReLU(), MaxPool2d(2)));
    block3 = register_module("block3", Sequential(Flatten(), Linear(32 * 7 * 7, 128), ReLU()));
  }
  torch::Tensor forward(const torch::Tensor& x) { return block3->forward(block2->forward(block1->forward(x))); }

  torch::nn::Sequential block1{nullptr}, block2{nullptr}, block3{nullptr};
};
TORCH_MODULE(SmallCnn);

// Prints one line per epoch: a callback needs only the hooks it uses. In a data-parallel run
// the values are those of all the processes, and rank 0 prints them.
struct epoch_report {
  static constexpr bool rank_zero_only = true;
  const char* stage;
  void on_epoch_end(kiln::context& ctx) {
    std::printf("[%s] epoch %lld/%lld  train loss %.4f  val loss %.4f  val accuracy %.4f  val f1 macro %.4f  lr %.2e\n",
                stage, static_cast<long long>(ctx.epoch + 1), static_cast<long long>(ctx.max_epochs),
                ctx.metrics.at("train/loss"), ctx.metrics.at("val/loss"),
                ctx.metrics.at("val/accuracy"), ctx.metrics.at("val/f1_macro"), ctx.learning_rates.back());
    std::fflush(stdout);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  // What a study (tools/kiln_optuna.py) may tune; checked against the pipeline's keys below.
  const kiln::tune::search_space space{kiln::tune::log_uniform("optimizer.lr", 3e-4, 1e-2),
                                       kiln::tune::uniform("optimizer.weight_decay", 0.0, 0.05),
                                       kiln::tune::log_uniform("backbone.lr_ratio", 0.01, 1.0),
                                       kiln::tune::uniform("scheduler.gamma", 0.1, 0.9),
                                       kiln::tune::integer("data.batch_size", 16, 64, {.step = 16})};
  auto config = kiln::config::from_command_line(
      argc, argv, {.description = "Pretrains a small CNN on MNIST digits 0-4, fine-tunes it on 5-9, writes a submission.",
                   .positional = {"data-dir", "output-dir"}});
  const auto& args = config.positional();
  const std::filesystem::path data_dir = args.size() > 0 ? args[0] : "data/mnist";
  const std::filesystem::path out_dir = args.size() > 1 ? args[1] : ".";
  // The program's own keys are read before the fine-tuning trainer checks that every key is known.
  const auto pretrain_epochs = config.value("pretrain.epochs", std::int64_t{3});
  const auto pretrain_lr = config.value("pretrain.lr", 1e-3);
  const auto pretrain_batch_size = config.value("pretrain.batch_size", std::int64_t{64});
  const auto batch_size = config.value("data.batch_size", std::int64_t{32});
  // The exit status says whether the test accuracy reached this (0) or not (1); a study's trials
  // set it to 0, so that a poor trial is a poor value rather than a failed run.
  const auto required_accuracy = config.value("check.test_accuracy", 0.95);
  std::filesystem::create_directories(out_dir);
  torch::manual_seed(0);

  const std::vector<std::int64_t> low{0, 1, 2, 3, 4}, high{5, 6, 7, 8, 9};
  // A stratified fifth of a stage's training digits validates it; the rest trains, shuffled.
  const auto fit_and_validation = [](const kiln::data::labelled& digits, std::int64_t batch_size, std::uint64_t seed) {
    const auto [fit_rows, val_rows] =
        kiln::cv::stratified_k_fold{.folds = 5, .shuffle = true, .seed = 0}.split(digits.labels).front();
    return std::pair{kiln::data::tensor_batches{digits.images.index_select(0, fit_rows),
                                                digits.labels.index_select(0, fit_rows),
                                                {.batch_size = batch_size, .shuffle = true, .seed = seed}},
                     kiln::data::tensor_batches{digits.images.index_select(0, val_rows),
                                                digits.labels.index_select(0, val_rows), {.batch_size = 256}}};
  };

  // The fine-tuning pipeline of step 2 (digits 5–9, from the backbone step 1 saves) is built
  // first, so that every key of the configuration, and the search space, are checked before
  // anything trains (a typo such as optimizer.learning_rate fails at once); the pretrained
  // weights go into its backbone once they exist.
  kiln::trainer finetune{
      config,  // overrides the numbers written below: --set optimizer.lr=0.001
      kiln::backbone<SmallCnn>{.lr_ratio = 0.1},
      kiln::freeze<1>{},
      kiln::head{torch::nn::Linear(128, 5)},
      kiln::adamw{.lr = 2e-3, .weight_decay = 1e-2},
      kiln::step_lr{.step_size = 2, .gamma = 0.3},
      kiln::accumulate<2>{},
      kiln::augment{kiln::random_crop{.size = {28, 28}, .padding = 2},
                    kiln::random_affine{.degrees = {-10, 10}, .translate = {0.05, 0.05},
                                        .interpolation = kiln::interpolation::bilinear}},
      kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>>{},
      kiln::data_parallel<kiln::gloo>{},  // one process alone; under torchrun, one of several
      kiln::callbacks{acme::throughput{}, epoch_report{"fine-tune 5-9"},
                      kiln::model_checkpoint{.directory = out_dir / "checkpoints", .monitor = "val/accuracy",
                                             .mode = kiln::mode::max, .keep_best = 1},
                      kiln::checkpoint_on_signal{.path = out_dir / "checkpoints" / "interrupted.pt"},
                      kiln::csv_logger{.path = out_dir / "finetune_metrics.csv"},
                      kiln::tensorboard_logger{.log_dir = out_dir / "runs" / "finetune"},
                      kiln::html_report{.path = out_dir / "finetune_report.html",
                                        .title = "MNIST transfer: fine-tuning on digits 5-9",
                                        .hyperparameters = {{"backbone", "SmallCnn pretrained on digits 0-4, block 1 frozen"},
                                                            {"optimizer", "adamw"},
                                                            {"scheduler", "step_lr"},
                                                            {"gradients accumulated over", "2 batches"}}},
                      kiln::tune::trial_report{}}};  // last: a study's trial ends after the others' hooks
  space.check(config);  // --print-search-space prints it here and exits
  torch::manual_seed(0);  // pretraining starts from the same weights however the pipeline above was built

  const auto train = kiln::data::mnist(data_dir, kiln::data::split::train);
  const auto test = kiln::data::mnist(data_dir, kiln::data::split::test);
  auto [batches, val] = fit_and_validation(kiln::data::select_classes(train, high), batch_size, 2);

  // 1. Pretraining on digits 0–4.
  {
    auto [low_batches, low_val] = fit_and_validation(kiln::data::select_classes(train, low), pretrain_batch_size, 1);

    kiln::trainer pretrain{kiln::backbone<SmallCnn>{}, kiln::head{torch::nn::Linear(128, 5)},
                           kiln::adam{.lr = pretrain_lr}, kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>>{},
                           kiln::data_parallel<kiln::gloo>{}, kiln::callbacks{epoch_report{"pretrain 0-4"}}};
    pretrain.fit(low_batches, low_val, {.epochs = pretrain_epochs});
    if (pretrain.state().writes_files()) kiln::save_weights(pretrain.backbone(), out_dir / "pretrained_backbone.pt");
    pretrain.distributed().barrier();  // the file is whole before any process reads it
  }

  // 2. Fine-tuning on digits 5–9.
  kiln::load_weights(finetune.backbone(), out_dir / "pretrained_backbone.pt");
  finetune.fit(batches, val, {.epochs = 5});
  if (!finetune.state().writes_files()) return 0;  // rank 0 alone predicts the test digits
  std::printf("configuration of the fine-tuning run:\n%s\n", finetune.state().hyperparameters.c_str());

  // 3. The test digits 5–9, once, with the best epoch's weights; submission id = row in the test file.
  const auto& checkpoints = finetune.callback_list().get<kiln::model_checkpoint>();
  finetune.load_checkpoint(checkpoints.best_path());
  std::printf("best epoch: %s (validation accuracy %.4f); %.1f s per epoch on average\n",
              checkpoints.best_path().c_str(), checkpoints.best_value(),
              finetune.callback_list().get<acme::throughput>().mean_epoch_seconds());
  const auto test_digits = kiln::data::select_classes(test, high);
  kiln::data::tensor_batches test_batches{test_digits.images, test_digits.labels, {.batch_size = 256}};
  const auto predicted = finetune.predict(test_batches).argmax(1);
  const auto ids = torch::nonzero(test.labels.ge(5)).squeeze(1);
  kiln::write_submission(out_dir / "submission.csv", ids, predicted + 5);
  // Test-time augmentation: the plain digits, turned by ±8° and shifted one pixel right and left.
  using kiln::affine;
  const auto with_tta =
      finetune
          .predict(test_batches, kiln::tta<kiln::mean_probabilities, affine, affine, affine, affine>{
                                     .variants = {affine{.degrees = 8}, affine{.degrees = -8},
                                                  affine{.translate = {1, 0}}, affine{.translate = {-1, 0}}}})
          .argmax(1);

  auto accuracy_of = [&](const torch::Tensor& p) { return p.eq(test_digits.labels).to(torch::kDouble).mean().item<double>(); };
  const double accuracy = accuracy_of(predicted), tta_accuracy = accuracy_of(with_tta);
  std::printf("test accuracy on digits 5-9: %.2f%% (%lld images, unseen until now); with test-time augmentation "
              "%.2f%%; submission: %s\n",
              100.0 * accuracy, static_cast<long long>(test_digits.labels.size(0)), 100.0 * tta_accuracy,
              (out_dir / "submission.csv").c_str());
  return accuracy >= required_accuracy ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "mnist_transfer: " << e.what() << '\n';
  return 2;
}
