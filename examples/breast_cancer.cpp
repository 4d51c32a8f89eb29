// A binary classifier on scikit-learn's breast-cancer table, with accuracy, F1 and AUROC each epoch.
//
// Data: data/breast_cancer.csv, written by scripts/prepare_tables.py (569 tumours, 30 features),
// split as breast_cancer_data.hpp says: every fifth row validates (114), the rest train (455).
// The positive class is "malignant" (scikit-learn's target 0).
//
// Model: 30 → 16 → 1, one logit per tumour, trained with kiln::bce_with_logits on float 0/1
// targets; the metrics read the same logit (positive where it is > 0) and rank by it (AUROC).
// Exits non-zero if the last epoch's validation AUROC is below 0.95.
//
// Usage: breast_cancer [csv]     (default: data/breast_cancer.csv)
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include "breast_cancer_data.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace {

// One logit per sample, as [N]: what bce_with_logits and the binary metrics read.
struct TumourNetImpl : torch::nn::Module {
  TumourNetImpl() {
    hidden = register_module("hidden", torch::nn::Linear(30, 16));
    out = register_module("out", torch::nn::Linear(16, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) { return out->forward(torch::relu(hidden->forward(x))).squeeze(1); }
  torch::nn::Linear hidden{nullptr}, out{nullptr};
};
TORCH_MODULE(TumourNet);

struct epoch_report {
  void on_epoch_end(kiln::context& ctx) {
    const auto& m = ctx.metrics;
    std::printf("epoch %2lld/%lld  train loss %.4f  val loss %.4f  accuracy %.4f  f1 %.4f  auroc %.4f\n",
                static_cast<long long>(ctx.epoch + 1), static_cast<long long>(ctx.max_epochs), m.at("train/loss"),
                m.at("val/loss"), m.at("val/accuracy"), m.at("val/f1"), m.at("val/auroc"));
    std::fflush(stdout);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  torch::manual_seed(0);
  // kiln::data::read_csv names the line and column of anything that is not a number.
  const std::filesystem::path path = argc > 1 ? argv[1] : "data/breast_cancer.csv";
  if (!std::filesystem::exists(path)) {
    std::cerr << "breast_cancer: " << path.string()
              << " is missing: run scripts/setup.sh (scripts/prepare_tables.py writes it)\n";
    return 2;
  }
  auto [train, val, val_tumours, val_malignant] = examples::split_breast_cancer(path, 32, 64);

  kiln::trainer classifier{
      kiln::backbone<TumourNet>{},
      kiln::bce_with_logits{},
      kiln::adamw{.lr = 5e-3, .weight_decay = 1e-2},
      kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::binary>, kiln::auroc<kiln::average::binary>>{},
      kiln::callbacks{epoch_report{}}};
  const auto history = classifier.fit(train, val, {.epochs = 15});

  const double auroc = history.back().at("val/auroc");
  std::printf("validation AUROC %.4f on %lld tumours (%lld malignant)\n", auroc, static_cast<long long>(val_tumours),
              static_cast<long long>(val_malignant));
  return auroc >= 0.95 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "breast_cancer: " << e.what() << '\n';
  return 2;
}
