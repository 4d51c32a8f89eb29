// kiln's training step against the hand-written LibTorch loop, side by side in one binary.
//
// Each benchmark iteration is one epoch of 64 pre-made batches, so the numbers include what a
// real epoch costs (the running loss kept on the device, one read at the end of the epoch).
// Rows come in pairs, kiln/<case> beside hand/<case>; `items_per_second` is batches per second.
//
//   plain     zero_grad, forward, cross-entropy, backward, SGD step; running loss on the device
//   full      the same with accumulate<4>, a per-step StepLR schedule and three callbacks
//   metrics   plain, then validation over 16 batches (loss, accuracy, macro F1, one-vs-rest
//             macro AUROC); the hand loop computes the same metrics by hand: a correct count and
//             a confusion matrix on the device, softmax probabilities kept per batch, all read
//             once at the end of the epoch
//   cv5       one iteration is a whole 5-fold stratified cross-validation of 320 samples, two
//             epochs per fold with validation, the held-out predictions assembled out of fold and
//             their accuracy: kiln::cv::cross_validate beside five fits written by hand on the
//             same folds
//   ensemble4 one iteration is four trained models' soft vote over 16 batches:
//             kiln::ensemble::predict beside four hand-written forward passes and the mean of
//             their probabilities
//   config    plain, built from a kiln::config (each fit applies "fit.*" and records them)
//   one_of    config with kiln::one_of<kiln::adam, kiln::sgd> as the optimizer and
//             optimizer.type=sgd: its pair is config, the trainer written with the chosen type
//             (no hand-written row: the question is what the runtime choice costs)
//
// Models: tiny_mlp 32→64→2 at batch 16 (overhead-bound), mnist_mlp 784→256→10 at batch 64.
#include <kiln/config/config.hpp>
#include <kiln/cv/cross_validate.hpp>
#include <kiln/ensemble/ensemble.hpp>
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <benchmark/benchmark.h>
#include <valgrind/callgrind.h>

#include <cstdio>
#include <string>
#include <string_view>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

namespace {

struct MlpImpl : torch::nn::Module {
  MlpImpl(std::int64_t in, std::int64_t hidden, std::int64_t out)
      : fc1(register_module("fc1", torch::nn::Linear(in, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, out))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::relu(fc1->forward(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Mlp);

struct shape {
  std::int64_t in, hidden, out, batch;
};
constexpr shape tiny_mlp{32, 64, 2, 16};
constexpr shape mnist_mlp{784, 256, 10, 64};
constexpr int batches_per_epoch = 64;
constexpr double lr = 0.01;

using batch_list = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

batch_list make_batches(const shape& s, int count = batches_per_epoch, std::uint64_t seed = 0) {
  torch::manual_seed(seed);
  batch_list out;
  for (int i = 0; i < count; ++i) {
    out.emplace_back(torch::randn({s.batch, s.in}), torch::randint(0, s.out, {s.batch}, torch::kLong));
  }
  return out;
}

// The three callbacks of the "full" rows, and what the hand-written loop does in their place.
struct count_batches {
  std::int64_t* batches;
  void on_batch_end(kiln::context&) { ++*batches; }
};
struct watch_lr {
  double* sum;
  void on_before_optimizer_step(kiln::context& ctx) { *sum += ctx.learning_rates[0]; }
};
struct epoch_counter {
  std::int64_t* epochs;
  void on_epoch_end(kiln::context&) { ++*epochs; }
};

auto make_kiln_plain(shape s) {
  torch::manual_seed(1);
  return kiln::trainer{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr}};
}

// The same pipeline from a configuration, and with the optimizer chosen by it among two types.
auto make_kiln_config(shape s) {
  torch::manual_seed(1);
  kiln::config config;
  return kiln::trainer{config, kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr}};
}

auto make_kiln_one_of(shape s) {
  torch::manual_seed(1);
  auto config = kiln::config::from_json(R"({"optimizer.type": "sgd"})");
  return kiln::trainer{config, kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)},
                       kiln::one_of{kiln::adam{}, kiln::sgd{.lr = lr}}};
}

struct counters {
  std::int64_t seen = 0, epochs = 0;
  double lr_sum = 0;
};

auto make_kiln_full(shape s, counters* c) {
  torch::manual_seed(1);
  return kiln::trainer{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr},
                       kiln::accumulate<4>{},
                       kiln::step_lr{.step_size = 1000, .gamma = 0.5, .interval = kiln::interval::step},
                       kiln::callbacks{count_batches{&c->seen}, watch_lr{&c->lr_sum}, epoch_counter{&c->epochs}}};
}

// Each case builds its model and optimizer once; epoch() trains one epoch over the batches.
template <auto Make>
class kiln_made {
 public:
  explicit kiln_made(shape s) : batches_(make_batches(s)), trainer_(Make(s)) {}
  void epoch() { benchmark::DoNotOptimize(trainer_.fit(batches_)); }

 private:
  batch_list batches_;
  decltype(Make(shape{})) trainer_;
};
using kiln_plain = kiln_made<&make_kiln_plain>;
using kiln_config = kiln_made<&make_kiln_config>;
using kiln_one_of = kiln_made<&make_kiln_one_of>;

class hand_plain {
 public:
  explicit hand_plain(shape s)
      : batches_(make_batches(s)),
        model_((torch::manual_seed(1), Mlp(s.in, s.hidden, s.out))),
        optimizer_(model_->parameters(), torch::optim::SGDOptions(lr)) {}

  void epoch() {
    model_->train();
    auto loss_sum = torch::zeros({}, torch::kDouble);
    std::int64_t samples = 0;
    for (const auto& [x, y] : batches_) {
      auto input = x.to(torch::kCPU, true), target = y.to(torch::kCPU, true);
      optimizer_.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model_->forward(input), target);
      loss.backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum.add_(loss, input.size(0));
      }
      samples += input.size(0);
      optimizer_.step();
    }
    benchmark::DoNotOptimize(loss_sum.item<double>() / static_cast<double>(samples));
  }

  Mlp& model() { return model_; }

 private:
  batch_list batches_;
  Mlp model_;
  torch::optim::SGD optimizer_;
};

class kiln_full {
 public:
  explicit kiln_full(shape s) : batches_(make_batches(s)), trainer_(make_kiln_full(s, &counters_)) {}
  void epoch() {
    benchmark::DoNotOptimize(trainer_.fit(batches_));
    benchmark::DoNotOptimize(counters_.seen + counters_.epochs + counters_.lr_sum);
  }

 private:
  counters counters_;
  batch_list batches_;
  decltype(make_kiln_full(shape{}, nullptr)) trainer_;
};

class hand_full {
 public:
  explicit hand_full(shape s)
      : batches_(make_batches(s)),
        model_((torch::manual_seed(1), Mlp(s.in, s.hidden, s.out))),
        optimizer_(model_->parameters(), torch::optim::SGDOptions(lr)) {}

  void epoch() {
    constexpr int accumulate = 4;
    model_->train();
    auto loss_sum = torch::zeros({}, torch::kDouble);
    std::int64_t samples = 0;
    int in_window = 0;
    for (const auto& [x, y] : batches_) {
      auto input = x.to(torch::kCPU, true), target = y.to(torch::kCPU, true);
      if (in_window == 0) optimizer_.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model_->forward(input), target);
      loss.div(accumulate).backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum.add_(loss, input.size(0));
      }
      samples += input.size(0);
      if (++in_window == accumulate) {
        auto& options = static_cast<torch::optim::SGDOptions&>(optimizer_.param_groups()[0].options());
        lr_sum_ += options.lr();
        optimizer_.step();
        ++steps_;
        if (steps_ % 1000 == 0) options.lr(options.lr() * 0.5);  // StepLR per optimizer step
        in_window = 0;
      }
      ++seen_;
    }
    ++epochs_;
    benchmark::DoNotOptimize(loss_sum.item<double>() / static_cast<double>(samples));
    benchmark::DoNotOptimize(seen_ + epochs_ + lr_sum_);
  }

 private:
  batch_list batches_;
  Mlp model_;
  torch::optim::SGD optimizer_;
  std::int64_t seen_ = 0, epochs_ = 0, steps_ = 0;
  double lr_sum_ = 0;
};

// The "metrics" rows: validation data, and the hand loop's own metrics.
constexpr int val_batches = 16;

auto make_kiln_metrics(shape s) {
  torch::manual_seed(1);
  return kiln::trainer{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr},
                       kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>, kiln::auroc<kiln::average::macro>>{}};
}

class kiln_metrics {
 public:
  explicit kiln_metrics(shape s)
      : batches_(make_batches(s)), val_(make_batches(s, val_batches, 2)), trainer_(make_kiln_metrics(s)) {}
  void epoch() { benchmark::DoNotOptimize(trainer_.fit(batches_, val_)); }

 private:
  batch_list batches_, val_;
  decltype(make_kiln_metrics(shape{})) trainer_;
};

// Macro F1 from a confusion matrix (rows true, columns predicted): 2·tp / (predicted + actual)
// per class, averaged over the classes that occur.
double macro_f1(const torch::Tensor& confusion) {
  const auto m = confusion.to(torch::kDouble);
  const auto occurrences = m.sum(0) + m.sum(1);
  const auto present = occurrences.gt(0);
  const auto f1 = m.diagonal().mul(2).div(occurrences.clamp_min(1));
  return f1.mul(present).sum().item<double>() / present.sum().item<double>();
}

// One-vs-rest macro AUROC: per class, the ROC curve at each distinct probability, integrated by
// torch::trapz.
double macro_auroc(const torch::Tensor& probabilities, const torch::Tensor& targets) {
  double sum = 0;
  const auto zero = torch::zeros({1}, torch::kDouble);
  for (std::int64_t c = 0; c < probabilities.size(1); ++c) {
    const auto [sorted, order] = probabilities.select(1, c).sort(0, /*descending=*/true);
    const auto positive = targets.index_select(0, order).eq(c).to(torch::kDouble);
    const auto last = torch::cat({sorted.slice(0, 1).ne(sorted.slice(0, 0, -1)), torch::ones({1}, torch::kBool)});
    const auto tps = positive.cumsum(0).masked_select(last), fps = (1 - positive).cumsum(0).masked_select(last);
    sum += torch::trapz(torch::cat({zero, tps / tps[-1]}), torch::cat({zero, fps / fps[-1]})).item<double>();
  }
  return sum / static_cast<double>(probabilities.size(1));
}

class hand_metrics {
 public:
  explicit hand_metrics(shape s) : train_(s), val_(make_batches(s, val_batches, 2)), classes_(s.out) {}

  void epoch() {
    train_.epoch();
    torch::NoGradGuard no_grad;
    auto& model = train_.model();
    model->eval();
    auto loss_sum = torch::zeros({}, torch::kDouble);
    auto correct = torch::zeros({}, torch::kLong);
    auto confusion = torch::zeros({classes_ * classes_}, torch::kLong);
    std::vector<torch::Tensor> probabilities, targets;
    std::int64_t samples = 0;
    for (const auto& [x, y] : val_) {
      auto input = x.to(torch::kCPU, true), target = y.to(torch::kCPU, true);
      auto logits = model->forward(input);
      loss_sum.add_(torch::nn::functional::cross_entropy(logits, target), input.size(0));
      auto predicted = logits.argmax(1);
      correct.add_(predicted.eq(target).sum());
      auto cell = target * classes_ + predicted;
      confusion.index_add_(0, cell, torch::ones_like(cell));
      probabilities.push_back(logits.softmax(1));
      targets.push_back(target);
      samples += input.size(0);
    }
    const auto n = static_cast<double>(samples);
    benchmark::DoNotOptimize(loss_sum.item<double>() / n);
    benchmark::DoNotOptimize(static_cast<double>(correct.item<std::int64_t>()) / n);
    benchmark::DoNotOptimize(macro_f1(confusion.view({classes_, classes_})));
    benchmark::DoNotOptimize(macro_auroc(torch::cat(probabilities).to(torch::kDouble), torch::cat(targets)));
  }

 private:
  hand_plain train_;
  batch_list val_;
  std::int64_t classes_;
};

// The "cv5" rows.
constexpr int cv_samples = 320, cv_epochs = 2;
const kiln::cv::stratified_k_fold cv_splitter{.folds = 5, .shuffle = true, .seed = 0};

struct cv_data {
  torch::Tensor x, y;
};

cv_data make_cv_data(const shape& s) {
  torch::manual_seed(4);
  return {torch::randn({cv_samples, s.in}), torch::randint(0, s.out, {cv_samples}, torch::kLong)};
}

class kiln_cv {
 public:
  explicit kiln_cv(shape s) : s_(s), data_(make_cv_data(s)) {}
  void epoch() {
    auto make = [s = s_](const kiln::cv::fold_info&) {
      return kiln::trainer{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr},
                           kiln::metrics<kiln::accuracy>{}};
    };
    const auto cv = kiln::cv::cross_validate(make, data_.x, data_.y, cv_splitter,
                                             {.fit = {.epochs = cv_epochs},
                                              .train = {.batch_size = s_.batch, .shuffle = true, .seed = 1},
                                              .validation = {.batch_size = s_.batch},
                                              .seed = 1});
    benchmark::DoNotOptimize(cv.oof_metrics.at("oof/accuracy"));
  }

 private:
  shape s_;
  cv_data data_;
};

// Five fits by hand on the same folds, each with what the kiln fold does: seeded weights, a
// shuffled order per epoch, the running loss on the device, validation loss and accuracy after
// each epoch, the held-out predictions put in their rows.
class hand_cv {
 public:
  explicit hand_cv(shape s) : s_(s), data_(make_cv_data(s)) {}

  void epoch() {
    const auto folds = cv_splitter.split(data_.y);
    auto oof = torch::zeros({cv_samples, s_.out});
    for (const auto& fold : folds) {
      torch::manual_seed(1);
      Mlp model(s_.in, s_.hidden, s_.out);
      torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(lr));
      const auto train_x = data_.x.index_select(0, fold.train), train_y = data_.y.index_select(0, fold.train);
      const auto test_x = data_.x.index_select(0, fold.test), test_y = data_.y.index_select(0, fold.test);
      auto generator = at::detail::createCPUGenerator(1);
      for (int e = 0; e < cv_epochs; ++e) {
        model->train();
        generator.set_current_seed(1 + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(e));
        const auto order = torch::randperm(train_x.size(0), generator, torch::TensorOptions().dtype(torch::kLong));
        auto loss_sum = torch::zeros({}, torch::kDouble);
        for (std::int64_t start = 0; start < train_x.size(0); start += s_.batch) {
          const auto rows = order.narrow(0, start, std::min(s_.batch, train_x.size(0) - start));
          const auto input = train_x.index_select(0, rows), target = train_y.index_select(0, rows);
          optimizer.zero_grad();
          auto loss = torch::nn::functional::cross_entropy(model->forward(input), target);
          loss.backward();
          {
            torch::NoGradGuard no_grad;
            loss_sum.add_(loss, input.size(0));
          }
          optimizer.step();
        }
        benchmark::DoNotOptimize(loss_sum.item<double>() / static_cast<double>(train_x.size(0)));
        torch::NoGradGuard no_grad;
        model->eval();
        auto val_loss = torch::zeros({}, torch::kDouble);
        auto correct = torch::zeros({}, torch::kLong);
        for (std::int64_t start = 0; start < test_x.size(0); start += s_.batch) {
          const auto length = std::min(s_.batch, test_x.size(0) - start);
          const auto input = test_x.narrow(0, start, length), target = test_y.narrow(0, start, length);
          const auto logits = model->forward(input);
          val_loss.add_(torch::nn::functional::cross_entropy(logits, target), length);
          correct.add_(logits.argmax(1).eq(target).sum());
        }
        benchmark::DoNotOptimize(val_loss.item<double>() + static_cast<double>(correct.item<std::int64_t>()));
      }
      torch::NoGradGuard no_grad;
      model->eval();
      std::vector<torch::Tensor> outputs;
      for (std::int64_t start = 0; start < test_x.size(0); start += s_.batch) {
        outputs.push_back(model->forward(test_x.narrow(0, start, std::min(s_.batch, test_x.size(0) - start))));
      }
      oof.index_copy_(0, fold.test, torch::cat(outputs));
    }
    benchmark::DoNotOptimize(oof.argmax(1).eq(data_.y).to(torch::kDouble).mean().item<double>());
  }

 private:
  shape s_;
  cv_data data_;
};

// The "ensemble4" rows: four trained members, 16 batches to predict.
constexpr int ensemble_batches = 16;

class kiln_ensemble {
 public:
  explicit kiln_ensemble(shape s)
      : batches_(make_batches(s)), test_(make_batches(s, ensemble_batches, 3)), a_(make_kiln_plain(s)),
        b_(make_kiln_plain(s)), c_(make_kiln_plain(s)), d_(make_kiln_plain(s)) {
    a_.fit(batches_);  // members that differ
    b_.fit(batches_, {.epochs = 2});
  }
  void epoch() {
    benchmark::DoNotOptimize(kiln::ensemble::predict(kiln::ensemble::soft_vote{}, std::tie(a_, b_, c_, d_), test_));
  }

 private:
  batch_list batches_, test_;
  decltype(make_kiln_plain(shape{})) a_, b_, c_, d_;
};

class hand_ensemble {
 public:
  explicit hand_ensemble(shape s) : batches_(make_batches(s)), test_(make_batches(s, ensemble_batches, 3)) {
    for (int i = 0; i < 4; ++i) members_.push_back(std::make_unique<hand_plain>(s));
    members_[0]->epoch();
    members_[1]->epoch();
    members_[1]->epoch();
  }
  void epoch() {
    torch::NoGradGuard no_grad;
    torch::Tensor sum;
    for (auto& member : members_) {
      auto& model = member->model();
      model->eval();
      std::vector<torch::Tensor> outputs;
      for (const auto& [x, y] : test_) outputs.push_back(model->forward(x.to(torch::kCPU, true)));
      const auto probabilities = torch::cat(outputs).softmax(1);
      sum = sum.defined() ? sum.add_(probabilities) : probabilities;
    }
    benchmark::DoNotOptimize(sum.div_(4));
  }

 private:
  batch_list batches_, test_;
  std::vector<std::unique_ptr<hand_plain>> members_;
};

template <class Case>
void run(benchmark::State& state, shape s) {
  Case c(s);
  for (auto _ : state) c.epoch();
  state.SetItemsProcessed(state.iterations() * batches_per_epoch);
}

// Instruction counts, repeatable where wall time is not: under callgrind
// (bench/instructions.sh), counts only `epochs` epochs after two of warm-up.
template <class Case>
void count_instructions(shape s, int epochs) {
  Case c(s);
  c.epoch();
  c.epoch();
  CALLGRIND_ZERO_STATS;
  CALLGRIND_START_INSTRUMENTATION;
  for (int i = 0; i < epochs; ++i) c.epoch();
  CALLGRIND_STOP_INSTRUMENTATION;
  CALLGRIND_DUMP_STATS;
}

struct named_case {
  const char* name;
  void (*benchmark)(benchmark::State&, shape);
  void (*instructions)(shape, int);
  shape s;
};

template <class Case>
constexpr named_case entry(const char* name, shape s) {
  return {name, &run<Case>, &count_instructions<Case>, s};
}

// Pairs side by side: kiln/<case> beside hand/<case>.
const named_case cases[] = {
    entry<kiln_plain>("kiln/tiny_mlp/plain", tiny_mlp),   entry<hand_plain>("hand/tiny_mlp/plain", tiny_mlp),
    entry<kiln_full>("kiln/tiny_mlp/full", tiny_mlp),     entry<hand_full>("hand/tiny_mlp/full", tiny_mlp),
    entry<kiln_plain>("kiln/mnist_mlp/plain", mnist_mlp), entry<hand_plain>("hand/mnist_mlp/plain", mnist_mlp),
    entry<kiln_full>("kiln/mnist_mlp/full", mnist_mlp),   entry<hand_full>("hand/mnist_mlp/full", mnist_mlp),
    entry<kiln_metrics>("kiln/mnist_mlp/metrics", mnist_mlp), entry<hand_metrics>("hand/mnist_mlp/metrics", mnist_mlp),
    entry<kiln_cv>("kiln/tiny_mlp/cv5", tiny_mlp),        entry<hand_cv>("hand/tiny_mlp/cv5", tiny_mlp),
    entry<kiln_ensemble>("kiln/mnist_mlp/ensemble4", mnist_mlp), entry<hand_ensemble>("hand/mnist_mlp/ensemble4", mnist_mlp),
    entry<kiln_config>("kiln/tiny_mlp/config", tiny_mlp), entry<kiln_one_of>("kiln/tiny_mlp/one_of", tiny_mlp),
};

}  // namespace

int main(int argc, char** argv) {
  // One intra-op thread: these models are too small to gain from more, and one thread makes the
  // per-step overhead — what this benchmark is about — easier to see.
  torch::set_num_threads(1);
  // bench/instructions.sh: `kiln_bench_step --instructions <case> <epochs>` under callgrind.
  if (argc == 4 && std::string_view{argv[1]} == "--instructions") {
    for (const auto& c : cases) {
      if (c.name == std::string_view{argv[2]}) {
        c.instructions(c.s, std::stoi(argv[3]));
        return 0;
      }
    }
    std::fprintf(stderr, "kiln_bench_step: no case named %s\n", argv[2]);
    return 1;
  }
  for (const auto& c : cases) benchmark::RegisterBenchmark(c.name, c.benchmark, c.s);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
