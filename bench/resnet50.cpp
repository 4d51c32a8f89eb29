// kiln::models::resnet50 (the whole model, torchvision's layout) on the CPU: an eval-mode forward
// pass and an SGD training step, batches of 4 images of 224 × 224. bench/resnet50.sh runs it
// beside bench/resnet50.py, the same model from torchvision run by PyTorch eager on the same
// LibTorch, with the same threads, and prints both.
#include <kiln/models/resnet.hpp>
#include <torch/torch.h>

#include <benchmark/benchmark.h>

namespace {

constexpr std::int64_t batch = 4;

void forward(benchmark::State& state) {
  torch::manual_seed(0);
  kiln::models::resnet50 model{kiln::models::resnet_options{.classifier = true}};
  model->eval();
  const auto x = torch::randn({batch, 3, 224, 224});
  torch::NoGradGuard no_grad;
  model->forward(x);  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x));
  state.SetItemsProcessed(state.iterations() * batch);
}

void train_step(benchmark::State& state) {
  torch::manual_seed(0);
  kiln::models::resnet50 model{kiln::models::resnet_options{.classifier = true}};
  model->train();
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto x = torch::randn({batch, 3, 224, 224});
  const auto y = torch::arange(batch, torch::kLong);
  auto step = [&] {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    optimizer.step();
    return loss;
  };
  step();  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace

BENCHMARK(forward)->Name("kiln/resnet50/forward")->Iterations(5)->Repetitions(3)->ReportAggregatesOnly()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(train_step)->Name("kiln/resnet50/train_step")->Iterations(3)->Repetitions(3)->ReportAggregatesOnly()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
