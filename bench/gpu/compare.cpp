// kiln against the hand-written LibTorch loop on one device, eager and captured in a CUDA graph,
// for three models; prints microseconds per step and writes them as JSON. bench/gpu/run.sh runs
// it beside bench/gpu/compare.py (PyTorch eager and Lightning); see bench/README.md.
//
//   kiln_bench_compare [--device cuda|cpu] [--models mlp,cnn,wide] [--epochs E] [--repeats R]
//                      [--batches B] [--out results.json]
//
// Every variant trains the same model from the same initial weights on the same batches (made
// from a fixed seed, stored on the device before timing) with SGD (lr 0.01, momentum 0.9) and
// cross-entropy, and keeps the running loss on the device, read once per epoch. One warm-up
// epoch (it includes the capture) is not timed; then `epochs` epochs are, `repeats` times,
// the variants interleaved; the median is reported.
//
//   mlp   784 -> 256 -> 10, batch 64            (overhead-bound)
//   cnn   conv 1->16 3x3, pool, conv 16->32 3x3, pool, linear 1568 -> 10; 1x28x28, batch 64
//   wide  4096 -> 4096 -> 4096 -> 10, batch 1024 (compute-bound)
#include <kiln/execution/cuda_graph.hpp>
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct MlpImpl : torch::nn::Module {
  MlpImpl(std::int64_t in, std::int64_t hidden, std::int64_t layers, std::int64_t out) {
    std::int64_t width = in;
    for (std::int64_t i = 0; i < layers; ++i) {
      hidden_.push_back(register_module("fc" + std::to_string(i + 1), torch::nn::Linear(width, hidden)));
      width = hidden;
    }
    out_ = register_module("out", torch::nn::Linear(width, out));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& layer : hidden_) x = torch::relu(layer->forward(x));
    return out_->forward(x);
  }
  std::vector<torch::nn::Linear> hidden_;
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Mlp);

struct CnnImpl : torch::nn::Module {
  CnnImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(32 * 7 * 7, 10))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    h = torch::max_pool2d(torch::relu(conv2->forward(h)), 2);
    return fc->forward(h.flatten(1));
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc;
};
TORCH_MODULE(Cnn);

// A model behind one type, so that every variant is written once; the cost is one indirect
// call per forward, the same for kiln and the hand loops.
struct NetImpl : torch::nn::Module {
  explicit NetImpl(const std::string& kind) {
    if (kind == "mlp") {
      mlp = register_module("mlp", Mlp(784, 256, 1, 10));
    } else if (kind == "wide") {
      mlp = register_module("mlp", Mlp(4096, 4096, 2, 10));
    } else {
      cnn = register_module("cnn", Cnn());
    }
  }
  torch::Tensor forward(const torch::Tensor& x) { return mlp.is_empty() ? cnn->forward(x) : mlp->forward(x); }
  Mlp mlp{nullptr};
  Cnn cnn{nullptr};
};
TORCH_MODULE(Net);

struct model_spec {
  std::string name;
  std::vector<std::int64_t> input;  // one sample's shape
  std::int64_t batch;
  std::int64_t batches;
};

using batch_list = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

batch_list make_batches(const model_spec& m, const torch::Device& device) {
  torch::manual_seed(1234);
  batch_list out;
  std::vector<std::int64_t> shape{m.batch};
  shape.insert(shape.end(), m.input.begin(), m.input.end());
  for (std::int64_t i = 0; i < m.batches; ++i) {
    out.emplace_back(torch::randn(shape).to(device), torch::randint(0, 10, {m.batch}).to(device));
  }
  return out;
}

Net make_net(const model_spec& m, const torch::Device& device) {
  torch::manual_seed(1);
  Net net(m.name);
  net->to(device);
  return net;
}

constexpr double lr = 0.01, momentum = 0.9;

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// One variant: set up once, then epoch() trains one epoch over the batches.
struct variant {
  virtual ~variant() = default;
  virtual void epoch() = 0;
  virtual double final_loss() = 0;
};

class hand_eager : public variant {
 public:
  hand_eager(const model_spec& m, const batch_list& b, const torch::Device& d)
      : batches_(b), device_(d), net_(make_net(m, d)),
        optimizer_(net_->parameters(), torch::optim::SGDOptions(lr).momentum(momentum)) {}
  void epoch() override {
    net_->train();
    auto loss_sum = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
    std::int64_t samples = 0;
    for (const auto& [x, y] : batches_) {
      optimizer_.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net_->forward(x), y);
      loss.backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum.add_(loss, x.size(0));
      }
      samples += x.size(0);
      optimizer_.step();
    }
    last_ = loss_sum.item<double>() / static_cast<double>(samples);
  }
  double final_loss() override { return last_; }

 private:
  const batch_list& batches_;
  torch::Device device_;
  Net net_;
  torch::optim::SGD optimizer_;
  double last_ = 0;
};

template <class Execution>
class kiln_variant : public variant {
 public:
  kiln_variant(const model_spec& m, const batch_list& b, const torch::Device& d)
      : batches_(b),
        trainer_(kiln::backbone<Net>{.module = make_net(m, d)}, kiln::sgd{.lr = lr, .momentum = momentum}, Execution{}) {
    trainer_.to(d);
  }
  void epoch() override { last_ = trainer_.fit(batches_).back().at("train/loss"); }
  double final_loss() override { return last_; }

 private:
  const batch_list& batches_;
  kiln::trainer<kiln::backbone<Net>, kiln::sgd, Execution> trainer_;
  double last_ = 0;
};

#if KILN_HAS_CUDA_GRAPHS
// The whole step captured by hand, as PyTorch's CUDA graphs documentation describes it.
class hand_captured : public variant {
 public:
  hand_captured(const model_spec& m, const batch_list& b, const torch::Device& d)
      : batches_(b), device_(d), net_(make_net(m, d)),
        optimizer_(net_->parameters(), torch::optim::SGDOptions(lr).momentum(momentum)) {}

  void epoch() override {
    net_->train();
    auto loss_sum = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
    std::int64_t samples = 0;
    for (const auto& [x, y] : batches_) {
      torch::Tensor loss = graph_ ? replay(x, y) : warm_up_or_capture(x, y);
      torch::NoGradGuard no_grad;
      loss_sum.add_(loss, x.size(0));
      samples += x.size(0);
    }
    last_ = loss_sum.item<double>() / static_cast<double>(samples);
  }
  double final_loss() override { return last_; }

 private:
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& y) {
    optimizer_.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net_->forward(x), y);
    loss.backward();
    optimizer_.step();
    return loss;
  }
  torch::Tensor warm_up_or_capture(const torch::Tensor& x, const torch::Tensor& y) {
    auto current = c10::cuda::getCurrentCUDAStream();
    auto side = c10::cuda::getStreamFromPool(false, device_.index());
    at::cuda::CUDAEvent ready;
    ready.record(current);
    ready.block(side);
    torch::Tensor loss;
    if (warmed_ < 3) {
      c10::cuda::CUDAStreamGuard guard(side);
      loss = step(x, y);
      ++warmed_;
    } else {
      static_x_ = torch::empty_like(x);
      static_y_ = torch::empty_like(y);
      c10::cuda::device_synchronize();
      graph_ = std::make_unique<at::cuda::CUDAGraph>();
      {
        c10::cuda::CUDAStreamGuard guard(side);
        graph_->capture_begin();
        static_loss_ = step(static_x_, static_y_);
        graph_->capture_end();
      }
      c10::cuda::device_synchronize();
      return replay(x, y);
    }
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(current);
    return loss;
  }
  torch::Tensor replay(const torch::Tensor& x, const torch::Tensor& y) {
    static_x_.copy_(x, true);
    static_y_.copy_(y, true);
    graph_->replay();
    return static_loss_;
  }

  const batch_list& batches_;
  torch::Device device_;
  Net net_;
  torch::optim::SGD optimizer_;
  std::unique_ptr<at::cuda::CUDAGraph> graph_;
  torch::Tensor static_x_, static_y_, static_loss_;
  int warmed_ = 0;
  double last_ = 0;
};
#endif

struct arguments {
  std::string device = "cuda";
  std::vector<std::string> models{"mlp", "cnn", "wide"};
  int epochs = 10, repeats = 5;
  std::int64_t batches = 0;  // 0: each model's default
  std::string out;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  return parts;
}

arguments parse(int argc, char** argv) {
  arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("kiln_bench_compare: " + flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--device") {
      a.device = value;
    } else if (flag == "--models") {
      a.models = split(value);
    } else if (flag == "--epochs") {
      a.epochs = std::stoi(value);
    } else if (flag == "--repeats") {
      a.repeats = std::stoi(value);
    } else if (flag == "--batches") {
      a.batches = std::stoll(value);
    } else if (flag == "--out") {
      a.out = value;
    } else {
      throw std::invalid_argument("kiln_bench_compare: unknown flag " + flag +
                                  " (known: --device --models --epochs --repeats --batches --out)");
    }
  }
  return a;
}

model_spec spec_of(const std::string& name, std::int64_t batches) {
  if (name == "mlp") return {"mlp", {784}, 64, batches > 0 ? batches : 64};
  if (name == "cnn") return {"cnn", {1, 28, 28}, 64, batches > 0 ? batches : 64};
  if (name == "wide") return {"wide", {4096}, 1024, batches > 0 ? batches : 16};
  throw std::invalid_argument("kiln_bench_compare: unknown model " + name + " (known: mlp, cnn, wide)");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) try {
  const arguments args = parse(argc, argv);
  const torch::Device device(args.device == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU));
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::fprintf(stderr, "kiln_bench_compare: --device cuda, but LibTorch sees no CUDA device\n");
    return 2;
  }
  if (device.is_cpu()) torch::set_num_threads(1);
  std::printf("kiln_bench_compare: LibTorch %s, device %s, %d timed epochs x %d repeats\n", TORCH_VERSION,
              device.str().c_str(), args.epochs, args.repeats);

  std::ostringstream json;
  json << "{\"libtorch\": \"" << TORCH_VERSION << "\", \"device\": \"" << device.str() << "\", \"models\": {";
  bool first_model = true;
  for (const auto& name : args.models) {
    const model_spec m = spec_of(name, args.batches);
    const batch_list batches = make_batches(m, device);
    using factory = std::function<std::unique_ptr<variant>()>;
    std::vector<std::pair<std::string, factory>> factories{
        {"hand_eager", [&] { return std::make_unique<hand_eager>(m, batches, device); }},
        {"kiln_eager", [&] { return std::make_unique<kiln_variant<kiln::eager>>(m, batches, device); }},
    };
    if (device.is_cuda()) {
#if KILN_HAS_CUDA_GRAPHS
      factories.emplace_back("hand_captured", [&] { return std::make_unique<hand_captured>(m, batches, device); });
#endif
      factories.emplace_back("kiln_captured", [&] { return std::make_unique<kiln_variant<kiln::cuda_graph>>(m, batches, device); });
    }
    std::vector<std::unique_ptr<variant>> variants;
    for (const auto& [label, make] : factories) {
      variants.push_back(make());
      variants.back()->epoch();  // warm-up (and capture)
    }
    std::map<std::string, std::vector<double>> times;
    for (int r = 0; r < args.repeats; ++r) {
      for (std::size_t v = 0; v < variants.size(); ++v) {
        synchronize(device);
        const auto start = std::chrono::steady_clock::now();
        for (int e = 0; e < args.epochs; ++e) variants[v]->epoch();
        synchronize(device);
        const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
        times[factories[v].first].push_back(took.count() / static_cast<double>(args.epochs * m.batches));
      }
    }
    json << (first_model ? "" : ", ") << "\"" << name << "\": {";
    first_model = false;
    for (std::size_t v = 0; v < variants.size(); ++v) {
      const auto& label = factories[v].first;
      const double us = median(times[label]);
      std::printf("%-5s %-14s %10.1f us/step   (final epoch loss %.6f)\n", name.c_str(), label.c_str(), us,
                  variants[v]->final_loss());
      json << (v == 0 ? "" : ", ") << "\"" << label << "\": " << us;
    }
    json << "}";
    const double hand = median(times["hand_eager"]), kiln = median(times["kiln_eager"]);
    std::printf("%-5s kiln/hand eager %.3f", name.c_str(), kiln / hand);
    if (times.count("kiln_captured") != 0U) std::printf("   hand eager / kiln captured %.2fx", hand / median(times["kiln_captured"]));
    std::printf("\n");
    std::fflush(stdout);
  }
  json << "}}\n";
  if (!args.out.empty()) std::ofstream(args.out) << json.str();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kiln_bench_compare: %s\n", e.what());
  return 1;
}
