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

void kiln_plain(benchmark::State& state, shape s) {
  auto batches = make_batches(s);
  torch::manual_seed(1);
  kiln::trainer t{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr}};
  for (auto _ : state) benchmark::DoNotOptimize(t.fit(batches));
  state.SetItemsProcessed(state.iterations() * batches_per_epoch);
}

void hand_plain(benchmark::State& state, shape s) {
  auto batches = make_batches(s);
  torch::manual_seed(1);
  Mlp model(s.in, s.hidden, s.out);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(lr));
  for (auto _ : state) {
    model->train();
    auto loss_sum = torch::zeros({}, torch::kDouble);
    std::int64_t samples = 0;
    for (const auto& [x, y] : batches) {
      auto input = x.to(torch::kCPU, true), target = y.to(torch::kCPU, true);
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(input), target);
      loss.backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum.add_(loss, input.size(0));
      }
      samples += input.size(0);
      optimizer.step();
    }
    benchmark::DoNotOptimize(loss_sum.item<double>() / static_cast<double>(samples));
  }
  state.SetItemsProcessed(state.iterations() * batches_per_epoch);
}

void kiln_full(benchmark::State& state, shape s) {
  auto batches = make_batches(s);
  torch::manual_seed(1);
  std::int64_t seen = 0, epochs = 0;
  double lr_sum = 0;
  kiln::trainer t{kiln::backbone<Mlp>{.module = Mlp(s.in, s.hidden, s.out)}, kiln::sgd{.lr = lr},
                  kiln::accumulate<4>{},
                  kiln::step_lr{.step_size = 1000, .gamma = 0.5, .interval = kiln::interval::step},
                  kiln::callbacks{count_batches{&seen}, watch_lr{&lr_sum}, epoch_counter{&epochs}}};
  for (auto _ : state) benchmark::DoNotOptimize(t.fit(batches));
  benchmark::DoNotOptimize(seen + epochs + lr_sum);
  state.SetItemsProcessed(state.iterations() * batches_per_epoch);
}

void hand_full(benchmark::State& state, shape s) {
  auto batches = make_batches(s);
  torch::manual_seed(1);
  Mlp model(s.in, s.hidden, s.out);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(lr));
  constexpr int accumulate = 4;
  std::int64_t seen = 0, epochs = 0, steps = 0;
  double lr_sum = 0;
  for (auto _ : state) {
    model->train();
    auto loss_sum = torch::zeros({}, torch::kDouble);
    std::int64_t samples = 0;
    int in_window = 0;
    for (const auto& [x, y] : batches) {
      auto input = x.to(torch::kCPU, true), target = y.to(torch::kCPU, true);
      if (in_window == 0) optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(input), target);
      loss.div(accumulate).backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum.add_(loss, input.size(0));
      }
      samples += input.size(0);
      if (++in_window == accumulate) {
        auto& options = static_cast<torch::optim::SGDOptions&>(optimizer.param_groups()[0].options());
        lr_sum += options.lr();
        optimizer.step();
        ++steps;
        if (steps % 1000 == 0) options.lr(options.lr() * 0.5);  // StepLR per optimizer step
        in_window = 0;
      }
      ++seen;
    }
    ++epochs;
    benchmark::DoNotOptimize(loss_sum.item<double>() / static_cast<double>(samples));
  }
  benchmark::DoNotOptimize(seen + epochs + lr_sum);
  state.SetItemsProcessed(state.iterations() * batches_per_epoch);
}

}  // namespace

BENCHMARK_CAPTURE(kiln_plain, tiny_mlp, tiny_mlp)->Name("kiln/tiny_mlp/plain");
BENCHMARK_CAPTURE(hand_plain, tiny_mlp, tiny_mlp)->Name("hand/tiny_mlp/plain");
BENCHMARK_CAPTURE(kiln_full, tiny_mlp, tiny_mlp)->Name("kiln/tiny_mlp/full");
BENCHMARK_CAPTURE(hand_full, tiny_mlp, tiny_mlp)->Name("hand/tiny_mlp/full");
BENCHMARK_CAPTURE(kiln_plain, mnist_mlp, mnist_mlp)->Name("kiln/mnist_mlp/plain");
BENCHMARK_CAPTURE(hand_plain, mnist_mlp, mnist_mlp)->Name("hand/mnist_mlp/plain");
BENCHMARK_CAPTURE(kiln_full, mnist_mlp, mnist_mlp)->Name("kiln/mnist_mlp/full");
BENCHMARK_CAPTURE(hand_full, mnist_mlp, mnist_mlp)->Name("hand/mnist_mlp/full");

int main(int argc, char** argv) {
  // One intra-op thread: these models are too small to gain from more, and one thread makes the
  // per-step overhead — what this benchmark is about — easier to see.
  torch::set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
