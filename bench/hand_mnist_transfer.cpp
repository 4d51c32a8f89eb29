// examples/mnist_transfer.cpp written with LibTorch alone, as an engineer would without kiln:
// the same data, model, pretraining, freezing, accumulation, schedule, metrics and submission.
// Built only to compare compile times (bench/compile_time.py); it runs too.
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

torch::Tensor read_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  unsigned char magic[4];
  in.read(reinterpret_cast<char*>(magic), 4);
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (int i = 0; i < magic[3]; ++i) {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    shape.push_back((int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3]);
    count *= shape.back();
  }
  auto out = torch::empty(shape, torch::kUInt8);
  in.read(reinterpret_cast<char*>(out.data_ptr<uint8_t>()), count);
  return out;
}

std::pair<torch::Tensor, torch::Tensor> load(const std::string& root, const std::string& prefix) {
  auto images = read_idx(root + "/" + prefix + "-images-idx3-ubyte").unsqueeze(1).to(torch::kFloat32).div_(255.0);
  auto labels = read_idx(root + "/" + prefix + "-labels-idx1-ubyte").to(torch::kLong);
  return {images, labels};
}

std::pair<torch::Tensor, torch::Tensor> select(const std::pair<torch::Tensor, torch::Tensor>& set, int64_t first) {
  auto rows = (set.second.ge(first) & set.second.lt(first + 5)).nonzero().squeeze(1);
  return {set.first.index_select(0, rows), set.second.index_select(0, rows) - first};
}

struct SmallCnnImpl : torch::nn::Module {
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

struct NetImpl : torch::nn::Module {
  NetImpl(SmallCnn b) : backbone(register_module("backbone", b)), head(register_module("head", torch::nn::Linear(128, 5))) {}
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(backbone->forward(x)); }
  SmallCnn backbone;
  torch::nn::Linear head;
};
TORCH_MODULE(Net);

std::pair<double, double> evaluate(Net& net, const std::pair<torch::Tensor, torch::Tensor>& data) {
  torch::NoGradGuard no_grad;
  net->eval();
  auto loss_sum = torch::zeros({}, torch::kDouble);
  auto correct = torch::zeros({}, torch::kLong);
  const int64_t n = data.first.size(0);
  for (int64_t start = 0; start < n; start += 256) {
    const int64_t len = std::min<int64_t>(256, n - start);
    auto x = data.first.narrow(0, start, len), y = data.second.narrow(0, start, len);
    auto out = net->forward(x);
    loss_sum.add_(torch::nn::functional::cross_entropy(out, y), len);
    correct.add_(out.argmax(1).eq(y).sum());
  }
  return {loss_sum.item<double>() / n, static_cast<double>(correct.item<int64_t>()) / n};
}

template <class Optimizer, class Options>
void train(Net& net, Optimizer& optimizer, const std::pair<torch::Tensor, torch::Tensor>& data,
           const std::pair<torch::Tensor, torch::Tensor>& val, int epochs, int64_t batch, int accumulate,
           std::vector<std::shared_ptr<torch::nn::Module>> frozen, int step_size, double gamma, uint64_t seed,
           const char* stage) {
  auto gen = at::detail::createCPUGenerator(seed);
  for (int epoch = 0; epoch < epochs; ++epoch) {
    net->train();
    for (auto& m : frozen) m->eval();
    auto order = torch::randperm(data.first.size(0), gen, torch::kLong);
    auto loss_sum = torch::zeros({}, torch::kDouble);
    const int64_t n = data.first.size(0);
    int in_window = 0;
    for (int64_t start = 0; start < n; start += batch) {
      auto rows = order.narrow(0, start, std::min(batch, n - start));
      auto x = data.first.index_select(0, rows), y = data.second.index_select(0, rows);
      if (in_window == 0) optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.div(accumulate).backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum.add_(loss, x.size(0));
      }
      if (++in_window == accumulate) {
        optimizer.step();
        in_window = 0;
      }
    }
    if (in_window > 0) {
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) {
        if (p.grad().defined()) p.mutable_grad().mul_(static_cast<double>(accumulate) / in_window);
      }
      optimizer.step();
    }
    auto [val_loss, val_acc] = evaluate(net, val);
    if ((epoch + 1) % step_size == 0) {
      for (auto& group : optimizer.param_groups()) {
        auto& o = static_cast<Options&>(group.options());
        o.lr(o.lr() * gamma);
      }
    }
    std::printf("[%s] epoch %d/%d  train loss %.4f  val loss %.4f  val accuracy %.4f\n", stage, epoch + 1, epochs,
                loss_sum.item<double>() / n, val_loss, val_acc);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data_dir = argc > 1 ? argv[1] : "data/mnist";
  const std::filesystem::path out_dir = argc > 2 ? argv[2] : ".";
  torch::manual_seed(0);
  auto train_set = load(data_dir, "train"), test_set = load(data_dir, "t10k");

  {
    Net net(SmallCnn{});
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
    train<torch::optim::Adam, torch::optim::AdamOptions>(net, optimizer, select(train_set, 0), select(test_set, 0), 3,
                                                         64, 1, {}, 1000, 1.0, 1, "pretrain 0-4");
    auto tmp = out_dir / "pretrained_backbone.pt.tmp";
    torch::save(net->backbone, tmp.string());
    std::filesystem::rename(tmp, out_dir / "pretrained_backbone.pt");
  }

  SmallCnn backbone;
  torch::load(backbone, (out_dir / "pretrained_backbone.pt").string());
  Net net(backbone);
  for (auto& p : backbone->block1->parameters()) p.requires_grad_(false);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(backbone->parameters(), std::make_unique<torch::optim::AdamWOptions>(
                                                  torch::optim::AdamWOptions(2e-4).weight_decay(1e-2)));
  groups.emplace_back(net->head->parameters(), std::make_unique<torch::optim::AdamWOptions>(
                                                   torch::optim::AdamWOptions(2e-3).weight_decay(1e-2)));
  torch::optim::AdamW optimizer(std::move(groups), torch::optim::AdamWOptions(2e-3).weight_decay(1e-2));
  auto held_out = select(test_set, 5);
  train<torch::optim::AdamW, torch::optim::AdamWOptions>(net, optimizer, select(train_set, 5), held_out, 5, 32, 2,
                                                         {backbone->block1.ptr()}, 2, 0.3, 2, "fine-tune 5-9");

  torch::NoGradGuard no_grad;
  net->eval();
  auto predicted = net->forward(held_out.first).argmax(1) + 5;
  auto ids = test_set.second.ge(5).nonzero().squeeze(1);
  {
    auto tmp = out_dir / "submission.csv.tmp";
    std::ofstream out(tmp);
    out << "id,prediction\n";
    for (int64_t i = 0; i < ids.size(0); ++i) out << ids[i].item<int64_t>() << ',' << predicted[i].item<int64_t>() << '\n';
    out.close();
    std::filesystem::rename(tmp, out_dir / "submission.csv");
  }
  std::printf("held-out accuracy: %.2f%%\n", 100.0 * evaluate(net, held_out).second);
  return 0;
}
