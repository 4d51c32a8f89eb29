// K-fold cross-validation and an ensemble of the fold models, on two real data sets: scikit-learn's
// breast-cancer table (569 tumours, 30 features) and the MNIST digits.
//
// For each data set:
// 1. A test split is held out and never seen until the end: for the table, a stratified fifth
//    (kiln::cv::stratified_k_fold's first fold); for the digits, the 2,000 test digits.
// 2. 5-fold stratified cross-validation on the rest (kiln::cv::cross_validate): a fresh trainer
//    per fold, the best epoch of each kept by val/accuracy; prints each fold's validation values,
//    their mean ± standard deviation, and the metrics of all out-of-fold predictions at once.
// 3. The five fold models, each from its best checkpoint, predict the test split: alone, and
//    together as an ensemble (kiln::ensemble::soft_vote). Prints each one's test accuracy, the
//    best and the mean fold model's, and the ensemble's.
// Exits non-zero if an ensemble is less accurate than its mean fold model.
//
// Checkpoints go to <output-dir>/<data set>/fold_<k>/: run again with the same directory and the
// cross-validation resumes where it stopped (a finished one is read back).
//
// Usage: cross_validation [data-dir] [output-dir]     (defaults: data and cross_validation_out)
#include <kiln/cv/cross_validate.hpp>
#include <kiln/ensemble/ensemble.hpp>
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

// 30 → 32 → 2 for the tumours, 784 → 128 → 10 for the digits.
struct MlpImpl : torch::nn::Module {
  MlpImpl(std::int64_t in, std::int64_t hidden, std::int64_t out) {
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::relu(fc1->forward(x.flatten(1)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct shape {
  std::int64_t in, hidden, out;
};

// The pipeline of every fold: only its checkpoint directory differs.
auto pipeline(const shape& s, double lr, const kiln::cv::fold_info& fold) {
  return kiln::trainer{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)},
                       kiln::adamw{.lr = lr, .weight_decay = 1e-2},
                       kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>>{},
                       kiln::callbacks{kiln::model_checkpoint{.directory = fold.directory, .monitor = "val/accuracy",
                                                              .mode = kiln::mode::max}}};
}

std::int64_t correct(const torch::Tensor& predicted, const torch::Tensor& labels) {
  return predicted.eq(labels).sum().item<std::int64_t>();
}

/// Cross-validates on (x, y), then scores the fold models and their ensemble on the test split;
/// true when the ensemble is at least as accurate as the mean fold model.
bool study(const char* name, const shape& s, double lr, std::int64_t epochs, const torch::Tensor& x,
           const torch::Tensor& y, const torch::Tensor& test_x, const torch::Tensor& test_y,
           const std::filesystem::path& directory) {
  std::printf("== %s: %lld samples for 5-fold cross-validation, %lld held out for the test\n", name,
              static_cast<long long>(x.size(0)), static_cast<long long>(test_x.size(0)));
  auto make = [&](const kiln::cv::fold_info& fold) { return pipeline(s, lr, fold); };
  const auto cv = kiln::cv::cross_validate(make, x, y, kiln::cv::stratified_k_fold{.folds = 5, .shuffle = true, .seed = 0},
                                           {.fit = {.epochs = epochs},
                                            .train = {.batch_size = 64, .shuffle = true, .seed = 1},
                                            .directory = directory});
  for (std::size_t k = 0; k < cv.folds.size(); ++k) {
    const auto& m = cv.folds[k].metrics;
    std::printf("fold %zu: best epoch %s  val loss %.4f  accuracy %.4f  f1 macro %.4f\n", k,
                cv.folds[k].best_checkpoint.filename().c_str(), m.at("val/loss"), m.at("val/accuracy"),
                m.at("val/f1_macro"));
  }
  for (const auto& entry : cv.summary) {
    std::printf("folds: %-14s %.4f ± %.4f\n", entry.name.c_str(), entry.mean, entry.std);
  }
  std::printf("out of fold (all %lld predictions at once): accuracy %.4f  f1 macro %.4f\n",
              static_cast<long long>(x.size(0)), cv.oof_metrics.at("oof/accuracy"), cv.oof_metrics.at("oof/f1_macro"));

  // The fold models on the test split, one by one and as one ensemble.
  kiln::data::tensor_batches test{test_x, test_y, {.batch_size = 512}};
  auto model = make(kiln::cv::fold_info{.directory = directory / "ensemble"});
  const auto checkpoints = kiln::ensemble::best_checkpoints(cv);
  const auto outputs = kiln::ensemble::predict_each(model, checkpoints, test);
  const auto n = static_cast<double>(test_y.size(0));
  std::int64_t best = 0, sum = 0;  // correct predictions
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const auto right = correct(outputs[k].argmax(1), test_y);
    std::printf("fold %zu model: test accuracy %.4f\n", k, static_cast<double>(right) / n);
    best = std::max(best, right);
    sum += right;
  }
  const auto members = static_cast<std::int64_t>(outputs.size());
  const auto ensemble = kiln::ensemble::combine(kiln::ensemble::soft_vote{}, outputs, kiln::output_kind::class_scores);
  const auto together = correct(ensemble.argmax(1), test_y);
  std::printf("test accuracy: best fold model %.4f, mean fold model %.4f, ensemble of the 5 (soft vote) %.4f\n\n",
              static_cast<double>(best) / n, static_cast<double>(sum) / n / static_cast<double>(members),
              static_cast<double>(together) / n);
  return together * members >= sum;  // counted, so that equal accuracies compare equal
}

}  // namespace

int main(int argc, char** argv) try {
  const std::filesystem::path data_dir = argc > 1 ? argv[1] : "data";
  const std::filesystem::path out_dir = argc > 2 ? argv[2] : "cross_validation_out";
  if (!std::filesystem::exists(data_dir / "breast_cancer.csv") || !std::filesystem::exists(data_dir / "mnist")) {
    std::cerr << "cross_validation: " << data_dir.string()
              << " lacks breast_cancer.csv or mnist/: run scripts/setup.sh, which prepares both\n";
    return 2;
  }
  torch::manual_seed(0);
  bool ok = true;

  // The tumours: malignant (scikit-learn's target 0) is class 1. Features standardised with the
  // statistics of the cross-validation rows (the test rows are not looked at).
  {
    const auto table = kiln::data::read_csv(data_dir / "breast_cancer.csv");
    const auto features = table.values.narrow(1, 0, table.index_of("target"));
    const auto malignant = table.column("target").eq(0).to(torch::kLong);
    const auto [cv_rows, test_rows] =
        kiln::cv::stratified_k_fold{.folds = 5, .shuffle = true, .seed = 42}.split(malignant).front();
    auto x = features.index_select(0, cv_rows), test_x = features.index_select(0, test_rows);
    const auto mean = x.mean(0), scale = x.std(0);
    x = (x - mean) / scale;
    test_x = (test_x - mean) / scale;
    ok &= study("breast cancer", {30, 32, 2}, 5e-3, 20, x, malignant.index_select(0, cv_rows), test_x,
                malignant.index_select(0, test_rows), out_dir / "breast_cancer");
  }

  // The digits: the 8,000 training digits are cross-validated, the 2,000 test digits held out.
  {
    const auto train = kiln::data::mnist(data_dir / "mnist", kiln::data::split::train);
    const auto test = kiln::data::mnist(data_dir / "mnist", kiln::data::split::test);
    ok &= study("MNIST digits", {784, 128, 10}, 2e-3, 4, train.images, train.labels, test.images, test.labels,
                out_dir / "mnist");
  }
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "cross_validation: " << e.what() << '\n';
  return 2;
}
