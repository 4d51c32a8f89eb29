// A tunable pipeline: the breast-cancer classifier of breast_cancer.cpp with its optimizer type
// and freeze depth chosen at run time (kiln::one_of), its search space declared beside it, and
// the trial report a study reads. Run alone, it trains once with the numbers written here (or
// --set / --config); under tools/kiln_optuna.py it is one trial:
//
//   tools/kiln_optuna.py study --study bc --monitor val/loss --direction minimize --trials 20 \
//       --epochs 8 --pruner median --out tune_out -- build/examples/tune_breast_cancer
//
// Data: data/breast_cancer.csv (scripts/prepare_tables.py), or the key data.path, split as
// breast_cancer_data.hpp says: every fifth row validates (114 tumours), the rest train (455).
//
// Model: 30 → 32 → 16 → 1; the backbone's two blocks can be frozen (freeze.type = freeze_0,
// freeze_1: the first block keeps its random projection).
//
// Search space: optimizer.type (adamw | sgd), each optimizer's learning rate on a log scale,
// AdamW's weight decay, SGD's momentum, data.batch_size (16 to 128 by 16), freeze.type.
#include <kiln/config/config.hpp>
#include <kiln/kiln.hpp>
#include <kiln/tune/search_space.hpp>
#include <kiln/tune/trial_report.hpp>
#include <torch/torch.h>

#include "breast_cancer_data.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace {

struct TumourFeaturesImpl : torch::nn::Module {
  static constexpr std::size_t depth = 2;  // so that kiln::freeze<N> checks N
  TumourFeaturesImpl() {
    using namespace torch::nn;
    block1 = register_module("block1", Sequential(Linear(30, 32), ReLU()));
    block2 = register_module("block2", Sequential(Linear(32, 16), ReLU()));
  }
  torch::Tensor forward(const torch::Tensor& x) { return block2->forward(block1->forward(x)); }
  torch::nn::Sequential block1{nullptr}, block2{nullptr};
};
TORCH_MODULE(TumourFeatures);

// One logit per tumour, as [N]: what bce_with_logits and the binary metrics read.
struct LogitImpl : torch::nn::Module {
  LogitImpl() { linear = register_module("linear", torch::nn::Linear(16, 1)); }
  torch::Tensor forward(const torch::Tensor& x) { return linear->forward(x).squeeze(1); }
  torch::nn::Linear linear{nullptr};
};
TORCH_MODULE(Logit);

}  // namespace

int main(int argc, char** argv) try {
  const kiln::tune::search_space space{
      kiln::tune::categorical("optimizer.type", {"adamw", "sgd"}),
      kiln::tune::log_uniform("optimizer.adamw.lr", 1e-4, 3e-2).when("optimizer.type", "adamw"),
      kiln::tune::uniform("optimizer.adamw.weight_decay", 0.0, 0.1).when("optimizer.type", "adamw"),
      kiln::tune::log_uniform("optimizer.sgd.lr", 1e-3, 0.3).when("optimizer.type", "sgd"),
      kiln::tune::uniform("optimizer.sgd.momentum", 0.5, 0.99).when("optimizer.type", "sgd"),
      kiln::tune::integer("data.batch_size", 16, 128, {.step = 16}),
      kiln::tune::categorical("freeze.type", {"freeze_0", "freeze_1"})};

  auto config = kiln::config::from_command_line(
      argc, argv, {.description = "Trains the breast-cancer classifier once; a trial of a kiln_optuna study."});
  const std::filesystem::path path = config.value("data.path", std::string{"data/breast_cancer.csv"});
  const auto batch_size = config.value("data.batch_size", std::int64_t{32});
  torch::set_num_threads(1);  // a small network: one thread is fastest, and parallel trials share the cores
  torch::manual_seed(0);

  // Everything the configuration can set is known once the trainer is built: a typo fails here,
  // and so does a search space that names a key the pipeline lacks, before anything trains.
  kiln::trainer classifier{config,
                           kiln::backbone<TumourFeatures>{},
                           kiln::head{Logit{}},
                           kiln::one_of<kiln::freeze<0>, kiln::freeze<1>>{},
                           kiln::bce_with_logits{},
                           kiln::one_of{kiln::adamw{.lr = 5e-3, .weight_decay = 1e-2},
                                        kiln::sgd{.lr = 0.05, .momentum = 0.9}},
                           kiln::metrics<kiln::accuracy, kiln::auroc<kiln::average::binary>>{},
                           kiln::callbacks{kiln::tune::trial_report{}}};
  space.check(config);  // under --print-search-space: prints the space and exits

  if (!std::filesystem::exists(path)) {
    std::cerr << "tune_breast_cancer: " << path.string()
              << " is missing: run scripts/setup.sh (scripts/prepare_tables.py writes it), or set data.path\n";
    return 2;
  }
  auto [train, val, val_tumours, val_malignant] = examples::split_breast_cancer(path, batch_size, 128);

  const auto history = classifier.fit(train, val, {.epochs = 10});
  const auto& last = history.back();
  std::printf("%s: %zu epochs, validation loss %.4f, accuracy %.4f, AUROC %.4f\n", classifier.choices().c_str(),
              history.size(), last.at("val/loss"), last.at("val/accuracy"), last.at("val/auroc"));
  return 0;
} catch (const std::exception& e) {
  std::cerr << "tune_breast_cancer: " << e.what() << '\n';
  return 2;
}
