// Fine-tuning a torchvision architecture from a torchvision weight file: ResNet-18 on real MNIST
// digits.
//
// The backbone is kiln::models::resnet18 with torchvision's names; its weights come from a .pth
// file as torchvision publishes them (read in C++, checked against the SHA-256 prefix in its name
// when it has one, its classifier left out). Its stages through layer2 stay frozen; layer3,
// layer4 and a new 10-class head train. The digits become what the weights expect: three
// channels (the grey one repeated), 32 × 32 (bilinear), normalised with ImageNet's mean and std.
//
// Usage: resnet_mnist <weights.pth> [data-dir] [epochs]     (defaults: data/mnist, 3)
//   With the official ImageNet weights (no network here: fetch the file yourself):
//     curl -O https://download.pytorch.org/models/resnet18-f37072fd.pth
//     resnet_mnist resnet18-f37072fd.pth
//   ctest runs it with a file torchvision writes at test time (examples/torchvision_weights.py:
//   its seeded initialisation, BatchNorm statistics measured on the digits, nothing learnt),
//   since this machine cannot download the published one: 92.25 % after 3 epochs.
#include <kiln/kiln.hpp>
#include <kiln/models/pth.hpp>
#include <kiln/models/resnet.hpp>
#include <kiln/models/stages.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

namespace {

// MNIST digits as ImageNet weights expect images: 3 channels, 32 × 32, normalised.
torch::Tensor as_imagenet(const torch::Tensor& digits) {
  auto x = torch::nn::functional::interpolate(
      digits, torch::nn::functional::InterpolateFuncOptions().size(std::vector<std::int64_t>{32, 32}).mode(torch::kBilinear).align_corners(false));
  x = x.repeat({1, 3, 1, 1});
  return kiln::image::normalize(x, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
}

struct epoch_line {
  static constexpr bool rank_zero_only = true;
  void on_epoch_end(kiln::context& ctx) {
    std::printf("epoch %lld/%lld  train loss %.4f  val loss %.4f  val accuracy %.4f\n", static_cast<long long>(ctx.epoch + 1),
                static_cast<long long>(ctx.max_epochs), ctx.metrics.at("train/loss"), ctx.metrics.at("val/loss"),
                ctx.metrics.at("val/accuracy"));
    std::fflush(stdout);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: resnet_mnist <weights.pth> [data-dir] [epochs]\n";
    return 2;
  }
  const std::filesystem::path weights = argv[1];
  const std::filesystem::path data_dir = argc > 2 ? argv[2] : "data/mnist";
  const std::int64_t epochs = argc > 3 ? std::stoll(argv[3]) : 3;
  torch::manual_seed(0);

  namespace models = kiln::models;
  kiln::trainer t{kiln::backbone<models::resnet18>{},
                  models::freeze_through<models::resnet18, "layer2">{},  // conv1 … layer2 keep the file's weights
                  kiln::head{torch::nn::Linear(models::resnet18::width, 10)},
                  kiln::sgd{.lr = 0.05, .momentum = 0.9},
                  kiln::metrics<kiln::accuracy>{},
                  kiln::callbacks{epoch_line{}}};
  models::load_torchvision_weights(t.backbone(), weights);  // strict; fc.* left out

  const auto train = kiln::data::mnist(data_dir, kiln::data::split::train);
  const auto test = kiln::data::mnist(data_dir, kiln::data::split::test);
  // 4,000 training digits keep the example short on a CPU; all 2,000 test digits validate.
  kiln::data::tensor_batches train_batches{as_imagenet(train.images.narrow(0, 0, 4000)), train.labels.narrow(0, 0, 4000),
                                           {.batch_size = 64, .shuffle = true, .seed = 1}};
  kiln::data::tensor_batches test_batches{as_imagenet(test.images), test.labels, {.batch_size = 256}};
  const auto history = t.fit(train_batches, test_batches, {.epochs = epochs});
  const double accuracy = history.back().at("val/accuracy");
  std::printf("ResNet-18 from %s, stages through layer2 frozen: test accuracy %.2f%% on %lld digits\n",
              weights.filename().c_str(), 100.0 * accuracy, static_cast<long long>(test.labels.size(0)));
  return accuracy >= 0.9 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "resnet_mnist: " << e.what() << '\n';
  return 2;
}
