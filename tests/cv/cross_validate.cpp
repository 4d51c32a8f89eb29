// kiln::cv::cross_validate: each fold equals a plain fit of its split, bit for bit, whatever ran
// before it; the OOF predictions, fold ids, pooled scores and summary are assembled from the
// folds; a run stopped in the middle resumes at the fold and epoch where it stopped and ends equal
// to the run that was never stopped; misuse is refused before any training.
#include "../support.hpp"

#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/cv/cross_validate.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

/// Dropout draws random numbers in every step: a fold that started from another generator state
/// would train differently.
struct DropMlpImpl : torch::nn::Module {
  DropMlpImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    drop = register_module("drop", torch::nn::Dropout(0.2));
    fc2 = register_module("fc2", torch::nn::Linear(16, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(drop->forward(torch::relu(fc1->forward(x)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(DropMlp);

/// Counts the epochs trained, over all folds, and throws at the `crash_at`-th, as a process
/// killed there would stop.
struct epoch_counter {
  std::int64_t* epochs;
  std::int64_t crash_at = -1;
  void on_epoch_end(kiln::context&) {
    if (++*epochs == crash_at) throw std::runtime_error("killed");
  }
};

fs::path fresh_dir(const std::string& name) { return kiln::test::fresh_dir("cv", name); }

/// Without checkpoints: state that could leak lives in the optimizer (AdamW's moments), the
/// schedule, early stopping and the random generator.
auto make_plain(const kiln::cv::fold_info&) {
  return kiln::trainer{kiln::backbone<DropMlp>{}, kiln::adamw{.lr = 0.01}, kiln::step_lr{.step_size = 2, .gamma = 0.5},
                       kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>>{},
                       kiln::callbacks{kiln::early_stopping{.monitor = "val/loss", .patience = 2}}};
}

/// With checkpoints in the fold's directory, and an epoch counter.
struct make_checkpointed {
  std::int64_t* epochs;
  std::int64_t crash_at = -1;
  auto operator()(const kiln::cv::fold_info& fold) const {
    return kiln::trainer{kiln::backbone<DropMlp>{}, kiln::adamw{.lr = 0.01},
                         kiln::metrics<kiln::accuracy>{},
                         kiln::callbacks{epoch_counter{epochs, crash_at},
                                         kiln::model_checkpoint{.directory = fold.directory, .monitor = "val/accuracy",
                                                                .mode = kiln::mode::max}}};
  }
};

struct data {
  kiln::test::toy_data all = kiln::test::make_toy(90, 4);
};

const kiln::cv::options plain_options{.fit = {.epochs = 5},
                                      .train = {.batch_size = 16, .shuffle = true, .seed = 3},
                                      .validation = {.batch_size = 32},
                                      .seed = 21};

}  // namespace

TEST_CASE("each fold equals a plain fit of its split with the same seed, bit for bit, whatever ran before") {
  data d;
  const kiln::cv::stratified_k_fold splitter{.folds = 3, .shuffle = true, .seed = 1};
  const auto cv = kiln::cv::cross_validate(make_plain, d.all.x, d.all.y, splitter, plain_options);
  const auto splits = splitter.split(d.all.y);
  REQUIRE(cv.folds.size() == 3);
  // The plain fits run in the reverse order: a fold that inherited anything from the fold before
  // it in cross_validate would not be reproduced.
  for (std::int64_t k = 2; k >= 0; --k) {
    CAPTURE(k);
    const auto& split = splits[static_cast<std::size_t>(k)];
    kiln::data::tensor_batches train{d.all.x.index_select(0, split.train), d.all.y.index_select(0, split.train),
                                     plain_options.train};
    kiln::data::tensor_batches held_out{d.all.x.index_select(0, split.test), d.all.y.index_select(0, split.test),
                                        plain_options.validation};
    torch::manual_seed(plain_options.seed);
    auto t = make_plain({.index = k});
    const auto history = t.fit(train, held_out, plain_options.fit);
    const auto& fold = cv.folds[static_cast<std::size_t>(k)];
    CHECK(torch::equal(fold.split.test, split.test));
    REQUIRE(fold.history.size() == history.size());
    for (std::size_t e = 0; e < history.size(); ++e) {
      for (const auto& [name, value] : history[e]) CHECK(fold.history[e].at(name) == value);
    }
    CHECK(torch::equal(fold.predictions, t.predict(held_out)));  // the same final weights
    CHECK(fold.metrics.at("val/loss") == t.validate(held_out).at("val/loss"));  // the last epoch's
    CHECK_FALSE(fold.metrics.contains("train/loss"));
    CHECK(fold.best_checkpoint.empty());
  }
}

TEST_CASE("the OOF predictions, fold ids, pooled scores and summary come from the folds") {
  data d;
  const auto cv = kiln::cv::cross_validate(make_plain, d.all.x, d.all.y, kiln::cv::k_fold{.folds = 4}, plain_options);
  REQUIRE(cv.oof_predictions.sizes() == torch::IntArrayRef({90, 3}));
  for (std::size_t k = 0; k < cv.folds.size(); ++k) {
    const auto& fold = cv.folds[k];
    CHECK(torch::equal(cv.oof_predictions.index_select(0, fold.split.test), fold.predictions));
    CHECK(torch::equal(cv.oof_fold.index_select(0, fold.split.test),
                       torch::full({fold.split.test.size(0)}, static_cast<std::int64_t>(k), torch::kLong)));
  }
  CHECK(cv.oof_fold.min().item<std::int64_t>() == 0);
  // Pooled: the pipeline's metrics over all 90 OOF predictions at once.
  const double accuracy = cv.oof_predictions.argmax(1).eq(d.all.y).to(torch::kDouble).mean().item<double>();
  CHECK(cv.oof_metrics.at("oof/accuracy") == doctest::Approx(accuracy).epsilon(1e-12));
  CHECK(cv.oof_metrics.contains("oof/f1_macro"));
  // Per fold: mean and population standard deviation (numpy's np.std) of each fold's value.
  for (const char* name : {"val/loss", "val/accuracy", "val/f1_macro"}) {
    CAPTURE(name);
    double sum = 0, squares = 0;
    for (const auto& fold : cv.folds) sum += fold.metrics.at(name);
    const double mean = sum / 4;
    for (const auto& fold : cv.folds) squares += std::pow(fold.metrics.at(name) - mean, 2);
    CHECK(cv.fold_summary(name).mean == doctest::Approx(mean).epsilon(1e-12));
    CHECK(cv.fold_summary(name).std == doctest::Approx(std::sqrt(squares / 4)).epsilon(1e-12));
  }
  CHECK(kiln::test::contains(kiln::test::message_of([&] { (void)cv.fold_summary("val/auroc"); }),
                             "no fold value named 'val/auroc'; the folds report: val/loss, val/accuracy, val/f1_macro"));
}

TEST_CASE("with repetitions, a sample's OOF prediction is the mean of its held-out predictions") {
  data d;
  const kiln::cv::repeated_stratified_k_fold splitter{.folds = 3, .repeats = 2, .seed = 9};
  auto options = plain_options;
  options.fit.epochs = 2;
  const auto cv = kiln::cv::cross_validate(make_plain, d.all.x, d.all.y, splitter, options);
  REQUIRE(cv.folds.size() == 6);
  auto sum = torch::zeros_like(cv.oof_predictions);
  for (const auto& fold : cv.folds) sum.index_add_(0, fold.split.test, fold.predictions);
  CHECK(torch::allclose(cv.oof_predictions, sum / 2, 0, 1e-6));
  for (std::size_t k = 0; k < 3; ++k) {  // fold ids from the first repetition
    CHECK((cv.oof_fold.index_select(0, cv.folds[k].split.test) == static_cast<std::int64_t>(k)).all().item<bool>());
  }
}

TEST_CASE("a cross-validation stopped in the middle resumes at that fold and epoch and ends as the unstopped run") {
  data d;
  const kiln::cv::stratified_k_fold splitter{.folds = 3, .shuffle = true, .seed = 2};
  auto options = plain_options;
  options.fit.epochs = 4;

  std::int64_t epochs = 0;
  options.directory = fresh_dir("whole");
  const auto whole = kiln::cv::cross_validate(make_checkpointed{&epochs}, d.all.x, d.all.y, splitter, options);
  CHECK(epochs == 12);

  options.directory = fresh_dir("stopped");
  epochs = 0;
  // Killed in fold 1's third epoch, before that epoch's checkpoint.
  CHECK_THROWS_WITH(kiln::cv::cross_validate(make_checkpointed{&epochs, 7}, d.all.x, d.all.y, splitter, options),
                    "killed");
  CHECK(fs::exists(options.directory / "fold_1" / "last.pt"));
  CHECK_FALSE(fs::exists(options.directory / "fold_2"));
  epochs = 0;
  const auto resumed = kiln::cv::cross_validate(make_checkpointed{&epochs}, d.all.x, d.all.y, splitter, options);
  CHECK(epochs == 2 + 4);  // fold 1's last two epochs, then fold 2; fold 0 is read back

  REQUIRE(resumed.folds.size() == whole.folds.size());
  for (std::size_t k = 0; k < whole.folds.size(); ++k) {
    CAPTURE(k);
    const auto& a = whole.folds[k];
    const auto& b = resumed.folds[k];
    REQUIRE(a.history.size() == b.history.size());
    for (std::size_t e = 0; e < a.history.size(); ++e) {
      for (const auto& [name, value] : a.history[e]) CHECK(b.history[e].at(name) == value);
    }
    CHECK(a.best_checkpoint.filename() == b.best_checkpoint.filename());
    CHECK(b.best_checkpoint.parent_path() == options.directory / ("fold_" + std::to_string(k)));
    CHECK(torch::equal(a.predictions, b.predictions));
  }
  CHECK(torch::equal(whole.oof_predictions, resumed.oof_predictions));
  CHECK(whole.oof_metrics.at("oof/accuracy") == resumed.oof_metrics.at("oof/accuracy"));
}

TEST_CASE("OOF predictions come from each fold's best checkpoint") {
  data d;
  std::int64_t epochs = 0;
  auto options = plain_options;
  options.directory = fresh_dir("best");
  const auto cv = kiln::cv::cross_validate(make_checkpointed{&epochs}, d.all.x, d.all.y, kiln::cv::k_fold{.folds = 3},
                                           options);
  for (const auto& fold : cv.folds) {
    REQUIRE_FALSE(fold.best_checkpoint.empty());
    const auto info = kiln::read_checkpoint_info(fold.best_checkpoint);
    double best = 0;
    for (const auto& epoch : fold.history) best = std::max(best, epoch.at("val/accuracy"));
    CHECK(info.history.back().at("val/accuracy") == best);
    CHECK(fold.metrics.at("val/accuracy") == best);  // the predicting model is the best epoch's
  }
}

TEST_CASE("cross_validate refuses misuse before any training") {
  data d;
  std::int64_t epochs = 0;
  auto options = plain_options;
  options.directory = fresh_dir("misuse");
  CHECK(kiln::test::contains(
      kiln::test::message_of([&] { kiln::cv::cross_validate(make_plain, d.all.x, d.all.y, kiln::cv::k_fold{.folds = 3}, options); }),
      "the trainer built for fold 0 has no kiln::model_checkpoint, but options.directory is set"));
  auto elsewhere = [&](const kiln::cv::fold_info&) {
    return make_checkpointed{&epochs}(kiln::cv::fold_info{.directory = fresh_dir("elsewhere")});
  };
  CHECK(kiln::test::contains(
      kiln::test::message_of([&] { kiln::cv::cross_validate(elsewhere, d.all.x, d.all.y, kiln::cv::k_fold{.folds = 3}, options); }),
      "writes its checkpoints to '"));
  // Without options.directory, folds that share a checkpoint directory would overwrite each
  // other's best files.
  options.directory.clear();
  const auto shared = fresh_dir("shared");
  auto sharing = [&](const kiln::cv::fold_info&) { return make_checkpointed{&epochs}(kiln::cv::fold_info{.directory = shared}); };
  CHECK(kiln::test::contains(
      kiln::test::message_of([&] { kiln::cv::cross_validate(sharing, d.all.x, d.all.y, kiln::cv::k_fold{.folds = 3}, options); }),
      "the trainer built for fold 1 writes its checkpoints to '" + shared.string() + "', where an earlier fold wrote"));
  CHECK(epochs == options.fit.epochs);  // fold 0 trained; fold 1 was refused before training
  options.fit.resume_from = "somewhere.pt";
  CHECK(kiln::test::contains(
      kiln::test::message_of([&] { kiln::cv::cross_validate(make_plain, d.all.x, d.all.y, kiln::cv::k_fold{.folds = 3}, options); }),
      "options.fit.resume_from is set"));
  options.fit.resume_from.clear();
  CHECK(kiln::test::contains(kiln::test::message_of([&] {
                               kiln::cv::cross_validate(make_plain, d.all.x, d.all.y.narrow(0, 0, 80),
                                                        kiln::cv::k_fold{.folds = 3}, options);
                             }),
                             "inputs and targets must have one row per sample, the same number of rows, got [90, 8]"));
}
