// kiln's training step against the hand-written LibTorch loop, side by side in one binary.
//
// Each benchmark iteration is one epoch of 64 pre-made batches, so the numbers include what a
// real epoch costs (the running loss kept on the device, one read at the end of the epoch).
// Rows come in pairs, kiln/<case> beside hand/<case>; `items_per_second` is batches per second.
//
//   plain     zero_grad, forward, cross-entropy, backward, SGD step; running loss on the device
//   full      the same with accumulate<4>, a per-step StepLR schedule and three callbacks
//
// Models: tiny_mlp 32→64→2 at batch 16 (overhead-bound), mnist_mlp 784→256→10 at batch 64.
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <benchmark/benchmark.h>
#include <valgrind/callgrind.h>

#include <cstdio>
#include <string>
#include <string_view>

#include <cstdint>
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

batch_list make_batches(const shape& s) {
  torch::manual_seed(0);
  batch_list out;
  for (int i = 0; i < batches_per_epoch; ++i) {
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
class kiln_plain {
 public:
  explicit kiln_plain(shape s) : batches_(make_batches(s)), trainer_(make_kiln_plain(s)) {}
  void epoch() { benchmark::DoNotOptimize(trainer_.fit(batches_)); }

 private:
  batch_list batches_;
  decltype(make_kiln_plain(shape{})) trainer_;
};

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
