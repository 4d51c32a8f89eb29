// kiln/models/resnet.hpp — torchvision's ResNets as LibTorch modules, with torchvision's parameter
// and buffer names, so that torchvision's weight files load strictly (kiln/models/pth.hpp).
//
//   kiln::models::resnet18, resnet34          BasicBlock  [2,2,2,2] [3,4,6,3]             width 512
//   kiln::models::resnet50, resnet101, resnet152   Bottleneck [3,4,6,3] [3,4,23,3] [3,8,36,3] 2048
//   kiln::models::resnext50_32x4d, resnext101_32x8d, resnext101_64x4d   grouped Bottleneck  2048
//   kiln::models::wide_resnet50_2, wide_resnet101_2   Bottleneck twice as wide inside       2048
//
// Each type, default-constructed, is the backbone: torchvision's network without its classifier
// (fc), whose forward returns the pooled features [N, width]. With `.classifier = true` it is
// the whole torchvision model, logits [N, classes]. Its top-level children are torchvision's
// stages, in order — conv1, bn1, relu, maxpool, layer1 … layer4, avgpool — so kiln::freeze<N>
// freezes the first N of them and kiln::freeze_until<"layer2"> names the last one frozen.
//
//   kiln::trainer t{kiln::backbone<kiln::models::resnet50>{}, kiln::freeze_until<"layer2">{},
//                   kiln::head{torch::nn::Linear(kiln::models::resnet50::width, classes)}, ...};
//   kiln::models::load_torchvision_weights(t.backbone(), "resnet50-11ad3fa6.pth");
//
// Initialisation is torchvision's: convolutions Kaiming-normal (fan_out, ReLU gain), BatchNorm
// weight 1 and bias 0; the classifier LibTorch's default Linear (torchvision keeps PyTorch's).
// ImageNet preprocessing for the published weights: kiln/models/preprocessing.hpp.
#pragma once

#include <kiln/models/layers.hpp>

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/init.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

namespace kiln::models {

/// The shape of a ResNet: block kind, blocks per stage, groups and width per group.
struct resnet_spec {
  bool bottleneck = false;
  std::array<std::int64_t, 4> blocks{2, 2, 2, 2};
  std::int64_t groups = 1;
  std::int64_t width_per_group = 64;
  [[nodiscard]] constexpr std::int64_t expansion() const { return bottleneck ? 4 : 1; }
  [[nodiscard]] constexpr std::int64_t width() const { return 512 * expansion(); }
};

struct resnet_options {
  bool classifier = false;     ///< keep torchvision's fc: the whole model, logits
  std::int64_t classes = 1000;  ///< the classifier's outputs
};

namespace detail {

inline torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1,
                              std::int64_t groups = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                               .stride(stride)
                               .padding(kernel / 2)
                               .groups(groups)
                               .bias(false));
}

/// torchvision's BasicBlock (two 3×3 convolutions) or Bottleneck (1×1, 3×3 grouped, 1×1), with
/// its names: conv1, bn1, conv2, bn2[, conv3, bn3], relu, downsample.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(const resnet_spec& spec, std::int64_t in, std::int64_t planes, std::int64_t stride)
      : bottleneck_(spec.bottleneck) {
    const std::int64_t out = planes * spec.expansion();
    if (bottleneck_) {
      const std::int64_t width = planes * spec.width_per_group / 64 * spec.groups;
      conv1_ = register_module("conv1", conv(in, width, 1));
      bn1_ = register_module("bn1", torch::nn::BatchNorm2d(width));
      conv2_ = register_module("conv2", conv(width, width, 3, stride, spec.groups));
      bn2_ = register_module("bn2", torch::nn::BatchNorm2d(width));
      conv3_ = register_module("conv3", conv(width, out, 1));
      bn3_ = register_module("bn3", torch::nn::BatchNorm2d(out));
    } else {
      conv1_ = register_module("conv1", conv(in, planes, 3, stride));
      bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
      conv2_ = register_module("conv2", conv(planes, planes, 3));
      bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
    }
    relu_ = register_module("relu", torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    if (stride != 1 || in != out) {
      downsample_ = register_module("downsample", torch::nn::Sequential(conv(in, out, 1, stride), torch::nn::BatchNorm2d(out)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = relu_(bn1_(conv1_(x)));
    y = bn2_(conv2_(y));
    if (bottleneck_) y = bn3_(conv3_(relu_(y)));
    y = y + (downsample_.is_empty() ? x : downsample_->forward(x));
    return relu_(y);
  }

 private:
  bool bottleneck_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::ReLU relu_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(ResidualBlock);

}  // namespace detail

/// A ResNet of torchvision's, by its spec; the named types below are the ones to use.
class ResNetImpl : public torch::nn::Module {
 public:
  /// Top-level children, in order: what kiln::freeze<N> and freeze_until count.
  static constexpr std::size_t depth = 9;
  static constexpr std::array<std::string_view, depth> stages{"conv1",  "bn1",    "relu",   "maxpool", "layer1",
                                                              "layer2", "layer3", "layer4", "avgpool"};
  /// The classifier's names in torchvision's files, left out when loading into a backbone.
  static constexpr std::string_view classifier_prefix = "fc.";

  explicit ResNetImpl(const resnet_spec& spec, const resnet_options& options = {}) : width_(spec.width()) {
    conv1_ = register_module("conv1", detail::conv(3, 64, 7, 2));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
    relu_ = register_module("relu", torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    maxpool_ = register_module("maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
    std::int64_t in = 64;
    for (std::size_t s = 0; s < 4; ++s) {
      const std::int64_t planes = 64 << s;
      torch::nn::Sequential stage;
      for (std::int64_t b = 0; b < spec.blocks[s]; ++b) {
        stage->push_back(detail::ResidualBlock(spec, in, planes, b == 0 && s > 0 ? 2 : 1));
        in = planes * spec.expansion();
      }
      layers_[s] = register_module("layer" + std::to_string(s + 1), stage);
    }
    avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
    if (options.classifier) fc_ = register_module("fc", torch::nn::Linear(width_, options.classes));
    detail::initialise(*this, torch::kReLU, nullptr);  // torchvision's; the classifier keeps LibTorch's default
  }

  /// Pooled features [N, width()], or logits [N, classes] with the classifier.
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = maxpool_(relu_(bn1_(conv1_(x))));
    for (auto& stage : layers_) y = stage->forward(y);
    y = avgpool_(y).flatten(1);
    return fc_.is_empty() ? y : fc_(y);
  }

  [[nodiscard]] std::int64_t width() const noexcept { return width_; }
  [[nodiscard]] bool has_classifier() const noexcept { return !fc_.is_empty(); }

 private:
  std::int64_t width_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::ReLU relu_{nullptr};
  torch::nn::MaxPool2d maxpool_{nullptr};
  std::array<torch::nn::Sequential, 4> layers_{torch::nn::Sequential{nullptr}, torch::nn::Sequential{nullptr},
                                              torch::nn::Sequential{nullptr}, torch::nn::Sequential{nullptr}};
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

/// The named ResNets (kiln/models/layers.hpp: default-constructed, the backbone).
template <resnet_spec Spec>
using resnet_variant = architecture<ResNetImpl, resnet_options, Spec>;

using resnet18 = resnet_variant<resnet_spec{.bottleneck = false, .blocks = {2, 2, 2, 2}}>;
using resnet34 = resnet_variant<resnet_spec{.bottleneck = false, .blocks = {3, 4, 6, 3}}>;
using resnet50 = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 6, 3}}>;
using resnet101 = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 23, 3}}>;
using resnet152 = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 8, 36, 3}}>;
using resnext50_32x4d = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 6, 3}, .groups = 32, .width_per_group = 4}>;
using resnext101_32x8d = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 23, 3}, .groups = 32, .width_per_group = 8}>;
using resnext101_64x4d = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 23, 3}, .groups = 64, .width_per_group = 4}>;
using wide_resnet50_2 = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 6, 3}, .width_per_group = 128}>;
using wide_resnet101_2 = resnet_variant<resnet_spec{.bottleneck = true, .blocks = {3, 4, 23, 3}, .width_per_group = 128}>;

}  // namespace kiln::models
