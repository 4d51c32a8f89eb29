// kiln's batched augmentation against the same chain written by hand in LibTorch, side by side
// in one binary, and what augmentation adds to a training step. bench/augment.sh runs it beside
// torchvision's per-sample transforms (bench/torchvision_chain.py) and prints the ratios.
//
//   chain/kiln   random crop with padding 4, horizontal flip, normalize on a batch of 256 images
//                3 × 32 × 32: kiln::augment's state applied to the batch
//   chain/hand   the same three steps written with LibTorch: pad the batch, one offset pair and
//                one flip per image from a generator, a gather of each image's window, a where
//                for the flips, a subtraction and a division
//   step/plain   one epoch of 8 batches of 64 such images through a small CNN (kiln::trainer)
//   step/augmented  the same with the chain above
#include <kiln/augment/augment.hpp>
#include <kiln/augment/transforms.hpp>
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

constexpr std::int64_t batch = 256;
const std::vector<double> mean{0.4914, 0.4822, 0.4465}, std_dev{0.247, 0.243, 0.261};

auto kiln_chain() {
  return kiln::augment{kiln::random_crop{.size = {32, 32}, .padding = 4}, kiln::random_horizontal_flip{},
                       kiln::normalize{.mean = mean, .std = std_dev}}
      .seeded(1);
}

// One chain each: set up once, then run() transforms the batch once.
struct kiln_chain_run {
  torch::Tensor images = (torch::manual_seed(0), torch::rand({batch, 3, 32, 32}));
  torch::Tensor labels = torch::randint(0, 10, {batch});
  decltype(kiln_chain())::state_type augment{kiln_chain()};
  torch::Tensor run() {
    torch::Tensor x = images, y = labels;
    augment.apply(x, y);
    return x;
  }
};

struct hand_chain_run {
  torch::Tensor images = (torch::manual_seed(0), torch::rand({batch, 3, 32, 32}));
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
  torch::Tensor mean_t = torch::tensor(mean).to(torch::kFloat).view({1, 3, 1, 1});
  torch::Tensor std_t = torch::tensor(std_dev).to(torch::kFloat).view({1, 3, 1, 1});
  torch::Tensor rows = torch::arange(32).view({1, 32, 1}), cols = torch::arange(32).view({1, 1, 32});
  torch::Tensor run() {
    const auto padded = torch::constant_pad_nd(images, {4, 4, 4, 4}, 0.0);  // [N, 3, 40, 40]
    const auto top = torch::randint(0, 9, {batch}, generator, torch::kLong);
    const auto left = torch::randint(0, 9, {batch}, generator, torch::kLong);
    const auto flip = torch::rand({batch}, generator) < 0.5;
    const auto index = ((top.view({-1, 1, 1}) + rows) * 40 + left.view({-1, 1, 1}) + cols).view({batch, 1, 32 * 32});
    auto x = padded.flatten(2).gather(2, index.expand({batch, 3, 32 * 32})).view({batch, 3, 32, 32});
    x = torch::where(flip.view({-1, 1, 1, 1}), x.flip({3}), x);
    return (x - mean_t) / std_t;
  }
};

template <class Chain>
void chain(benchmark::State& state) {
  Chain c;
  for (auto _ : state) benchmark::DoNotOptimize(c.run().data_ptr());
  state.SetItemsProcessed(state.iterations() * batch);
}

// bench/augment.sh: instructions of `iterations` runs after two of warm-up, under callgrind.
template <class Chain>
void count_instructions(int iterations) {
  Chain c;
  for (int i = 0; i < 2; ++i) c.run();
  CALLGRIND_START_INSTRUMENTATION;
  for (int i = 0; i < iterations; ++i) benchmark::DoNotOptimize(c.run().data_ptr());
  CALLGRIND_STOP_INSTRUMENTATION;
}

struct CnnImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{torch::nn::Conv2dOptions(3, 16, 3).padding(1)};
  torch::nn::Conv2d conv2{torch::nn::Conv2dOptions(16, 32, 3).padding(1)};
  torch::nn::Linear fc{32 * 8 * 8, 10};
  CnnImpl() {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("fc", fc);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(conv1(x)), 2);
    h = torch::max_pool2d(torch::relu(conv2(h)), 2);
    return fc(h.flatten(1));
  }
};
TORCH_MODULE(Cnn);

std::vector<std::pair<torch::Tensor, torch::Tensor>> step_batches() {
  torch::manual_seed(0);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> out;
  for (int i = 0; i < 8; ++i) out.emplace_back(torch::rand({64, 3, 32, 32}), torch::randint(0, 10, {64}));
  return out;
}

void step_plain(benchmark::State& state) {
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<Cnn>{}, kiln::sgd{.lr = 0.01}};
  const auto data = step_batches();
  for (auto _ : state) t.fit(data, {.epochs = 1});
  state.SetItemsProcessed(state.iterations() * 8);
}

void step_augmented(benchmark::State& state) {
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<Cnn>{}, kiln::sgd{.lr = 0.01}, kiln_chain()};
  const auto data = step_batches();
  for (auto _ : state) t.fit(data, {.epochs = 1});
  state.SetItemsProcessed(state.iterations() * 8);
}

}  // namespace

BENCHMARK(chain<kiln_chain_run>)->Name("chain/kiln")->Unit(benchmark::kMillisecond);
BENCHMARK(chain<hand_chain_run>)->Name("chain/hand")->Unit(benchmark::kMillisecond);
BENCHMARK(step_plain)->Name("step/plain")->Unit(benchmark::kMillisecond);
BENCHMARK(step_augmented)->Name("step/augmented")->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  torch::set_num_threads(1);  // as bench/torchvision_chain.py: one thread each
  // `kiln_bench_augment --instructions chain/kiln|chain/hand <iterations>`, under callgrind
  if (argc == 4 && std::string_view{argv[1]} == "--instructions") {
    const std::string_view which{argv[2]};
    if (which == "chain/kiln") {
      count_instructions<kiln_chain_run>(std::stoi(argv[3]));
    } else if (which == "chain/hand") {
      count_instructions<hand_chain_run>(std::stoi(argv[3]));
    } else {
      std::fprintf(stderr, "kiln_bench_augment: no chain named %s\n", argv[2]);
      return 1;
    }
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
