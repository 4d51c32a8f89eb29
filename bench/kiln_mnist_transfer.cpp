// bench/hand_mnist_transfer.cpp written with kiln: the same data, model, pretraining, freezing,
// accumulation, schedule, metric, per-epoch line and submission, and nothing more (no
// configuration, checkpoints or loggers, which the flagship example adds). Built only to compare
// compile times (bench/compile_time.py), header-only (kiln_mnist_transfer) and with kiln's
// compiled part (kiln_mnist_transfer_compiled); it runs too. It includes only the kiln headers it
// uses, as a file whose compile time matters would.
#include <kiln/data/batches.hpp>
#include <kiln/data/mnist.hpp>
#include <kiln/io/submission.hpp>
#include <kiln/metrics/accuracy.hpp>
#include <kiln/model/weights.hpp>
#include <kiln/trainer/trainer.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <string>

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

struct epoch_line {
  const char* stage;
  void on_epoch_end(kiln::context& ctx) {
    std::printf("[%s] epoch %lld/%lld  train loss %.4f  val loss %.4f  val accuracy %.4f\n", stage,
                static_cast<long long>(ctx.epoch + 1), static_cast<long long>(ctx.max_epochs),
                ctx.metrics.at("train/loss"), ctx.metrics.at("val/loss"), ctx.metrics.at("val/accuracy"));
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path data_dir = argc > 1 ? argv[1] : "data/mnist";
  const std::filesystem::path out_dir = argc > 2 ? argv[2] : ".";
  torch::manual_seed(0);
  const auto train = kiln::data::mnist(data_dir, kiln::data::split::train);
  const auto test = kiln::data::mnist(data_dir, kiln::data::split::test);
  const std::vector<std::int64_t> low{0, 1, 2, 3, 4}, high{5, 6, 7, 8, 9};

  {
    auto source = kiln::data::select_classes(train, low), source_val = kiln::data::select_classes(test, low);
    kiln::trainer pretrain{kiln::backbone<SmallCnn>{}, kiln::head{torch::nn::Linear(128, 5)}, kiln::adam{.lr = 1e-3},
                           kiln::metrics<kiln::accuracy>{}, kiln::callbacks{epoch_line{"pretrain 0-4"}}};
    pretrain.fit(kiln::data::tensor_batches{source.images, source.labels, {.batch_size = 64, .shuffle = true, .seed = 1}},
                 kiln::data::tensor_batches{source_val.images, source_val.labels, {.batch_size = 256}}, {.epochs = 3});
    kiln::save_weights(pretrain.backbone(), out_dir / "pretrained_backbone.pt");
  }

  auto target = kiln::data::select_classes(train, high), held_out = kiln::data::select_classes(test, high);
  kiln::trainer finetune{kiln::backbone<SmallCnn>{.weights = (out_dir / "pretrained_backbone.pt").string(), .lr_ratio = 0.1},
                         kiln::freeze<1>{},
                         kiln::head{torch::nn::Linear(128, 5)},
                         kiln::adamw{.lr = 2e-3, .weight_decay = 1e-2},
                         kiln::step_lr{.step_size = 2, .gamma = 0.3},
                         kiln::accumulate<2>{},
                         kiln::metrics<kiln::accuracy>{},
                         kiln::callbacks{epoch_line{"fine-tune 5-9"}}};
  kiln::data::tensor_batches val{held_out.images, held_out.labels, {.batch_size = 256}};
  finetune.fit(kiln::data::tensor_batches{target.images, target.labels, {.batch_size = 32, .shuffle = true, .seed = 2}},
               val, {.epochs = 5});

  const auto predicted = finetune.predict(val).argmax(1) + 5;
  kiln::write_submission(out_dir / "submission.csv", torch::nonzero(test.labels.ge(5)).squeeze(1), predicted);
  std::printf("held-out accuracy: %.2f%%\n", 100.0 * finetune.validate(val).at("val/accuracy"));
  return 0;
}
