// kiln/models/mobilenet.hpp — torchvision's MobileNetV2 and MobileNetV3 as LibTorch modules,
// with torchvision's parameter and buffer names, so that their weight files load strictly
// (kiln/models/pth.hpp).
//
//   kiln::models::mobilenet_v2         features: a 3×3 stem, 17 inverted residual blocks, a 1×1 to
//                                      1280 channels; width 1280; classifier: Dropout(0.2), Linear
//   kiln::models::mobilenet_v3_large   15 blocks (squeeze-and-excitation, hardswish), 960 channels;
//   kiln::models::mobilenet_v3_small   11 blocks, 576 channels; classifier: Linear to 1280 (1024),
//                                      hardswish, Dropout(0.2), Linear. The backbone keeps the
//                                      classifier's hidden Linear (pretrained): width 1280 (1024)
//
// MobileNetV2, default-constructed, is the backbone (features, global average pooling; [N, 1280]); with
// `.classifier = true` the whole model. Its top-level children are torchvision's `features`
// (and `classifier`): freezing counts whole children, so kiln::freeze<1> freezes all the features.
// torchvision's initialisation: convolutions Kaiming-normal (fan_out), BatchNorm 1 and 0, the
// classifier's Linear normal(0, 0.01) with zero bias.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/init.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace kiln::models {

struct mobilenet_options {
  bool classifier = false;      ///< keep torchvision's classifier: the whole model, logits
  std::int64_t classes = 1000;  ///< the classifier's outputs
  double dropout = 0.2;         ///< before the classifier's Linear
};

namespace detail {

// torchvision's Conv2dNormActivation with ReLU6: a Sequential of conv ("0"), BatchNorm ("1"),
// ReLU6 ("2"). A Sequential of its own type, whose forward is not a template, so that it can sit
// inside another Sequential (LibTorch's cannot).
class ConvBnReLU6Impl : public torch::nn::SequentialImpl {
 public:
  ConvBnReLU6Impl(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride, std::int64_t groups = 1) {
    push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).groups(groups).bias(false)));
    push_back(torch::nn::BatchNorm2d(out));
    push_back(torch::nn::ReLU6(torch::nn::ReLU6Options(true)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(ConvBnReLU6);

/// torchvision's InvertedResidual: `conv`, a Sequential of an optional 1×1 expansion, a 3×3
/// depthwise convolution and a 1×1 projection with its BatchNorm; a shortcut when the shape stays.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(std::int64_t in, std::int64_t out, std::int64_t stride, std::int64_t expand)
      : shortcut_(stride == 1 && in == out) {
    const std::int64_t hidden = in * expand;
    torch::nn::Sequential layers;
    if (expand != 1) layers->push_back(ConvBnReLU6(in, hidden, 1, 1));
    layers->push_back(ConvBnReLU6(hidden, hidden, 3, stride, hidden));
    layers->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, out, 1).bias(false)));
    layers->push_back(torch::nn::BatchNorm2d(out));
    conv_ = register_module("conv", layers);
  }
  torch::Tensor forward(const torch::Tensor& x) { return shortcut_ ? x + conv_->forward(x) : conv_->forward(x); }

 private:
  bool shortcut_;
  torch::nn::Sequential conv_{nullptr};
};
TORCH_MODULE(InvertedResidual);

}  // namespace detail

class MobileNetV2Impl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 1;  // features (the classifier is not the backbone's)
  static constexpr std::array<std::string_view, depth> stages{"features"};
  static constexpr std::string_view classifier_prefix = "classifier.";
  static constexpr std::int64_t width_of = 1280;

  explicit MobileNetV2Impl(const mobilenet_options& options = {}) {
    // (expansion, channels, blocks, first stride), torchvision's table for width 1.0.
    constexpr std::array<std::array<std::int64_t, 4>, 7> table{{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}};
    torch::nn::Sequential features;
    features->push_back(detail::ConvBnReLU6(3, 32, 3, 2));
    std::int64_t in = 32;
    for (const auto& [expand, channels, blocks, stride] : table) {
      for (std::int64_t b = 0; b < blocks; ++b) {
        features->push_back(detail::InvertedResidual(in, channels, b == 0 ? stride : 1, expand));
        in = channels;
      }
    }
    features->push_back(detail::ConvBnReLU6(in, width_of, 1, 1));
    features_ = register_module("features", features);
    if (options.classifier) {
      classifier_ = register_module("classifier", torch::nn::Sequential(torch::nn::Dropout(options.dropout),
                                                                        torch::nn::Linear(width_of, options.classes)));
    }
    for (auto& m : modules(/*include_self=*/false)) {  // torchvision's initialisation
      if (auto* c = m->as<torch::nn::Conv2d>()) {
        torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut);
      } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
        torch::nn::init::ones_(bn->weight);
        torch::nn::init::zeros_(bn->bias);
      } else if (auto* fc = m->as<torch::nn::Linear>()) {
        torch::nn::init::normal_(fc->weight, 0.0, 0.01);
        torch::nn::init::zeros_(fc->bias);
      }
    }
  }

  /// Pooled features [N, 1280], or logits with the classifier.
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::adaptive_avg_pool2d(features_->forward(x), {1, 1}).flatten(1);
    return classifier_.is_empty() ? y : classifier_->forward(y);
  }

  [[nodiscard]] bool has_classifier() const noexcept { return !classifier_.is_empty(); }

 private:
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
};

/// torchvision's mobilenet_v2: default-constructed the backbone, with options the model.
class mobilenet_v2 : public torch::nn::ModuleHolder<MobileNetV2Impl> {
 public:
  using Impl = MobileNetV2Impl;
  using options_type = mobilenet_options;
  static constexpr std::int64_t width = MobileNetV2Impl::width_of;
  mobilenet_v2() : mobilenet_v2(mobilenet_options{}) {}
  explicit mobilenet_v2(const mobilenet_options& options)
      : torch::nn::ModuleHolder<MobileNetV2Impl>(std::make_shared<MobileNetV2Impl>(options)) {}
  mobilenet_v2(std::nullptr_t) : torch::nn::ModuleHolder<MobileNetV2Impl>(nullptr) {}
  mobilenet_v2(std::shared_ptr<MobileNetV2Impl> impl) : torch::nn::ModuleHolder<MobileNetV2Impl>(std::move(impl)) {}
};

/// torchvision's _make_divisible: `v` rounded to the nearest multiple of `divisor` (at least
/// `divisor`), and up by one more when rounding lost more than a tenth.
constexpr std::int64_t make_divisible(double v, std::int64_t divisor) {
  std::int64_t rounded = static_cast<std::int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor;
  if (rounded < divisor) rounded = divisor;
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

namespace detail {

// The activations MobileNetV3 and EfficientNet use, as modules.
enum class activation { none, relu, hardswish, hardsigmoid, silu };
class ActivationImpl : public torch::nn::Module {
 public:
  explicit ActivationImpl(activation kind = activation::relu) : kind_(kind) {}
  torch::Tensor forward(const torch::Tensor& x) {
    switch (kind_) {
      case activation::relu: return torch::relu(x);
      case activation::hardswish: return torch::hardswish(x);
      case activation::hardsigmoid: return torch::hardsigmoid(x);
      case activation::silu: return torch::silu(x);
      case activation::none: break;
    }
    return x;
  }

 private:
  activation kind_;
};
TORCH_MODULE(Activation);

// torchvision's Conv2dNormActivation: conv ("0"), BatchNorm ("1"), the activation ("2") if any;
// BatchNorm as MobileNetV3 makes it (eps 0.001, momentum 0.01) unless told otherwise.
class ConvBnActImpl : public torch::nn::SequentialImpl {
 public:
  ConvBnActImpl(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride, std::int64_t groups,
                activation act, double eps = 0.001, double momentum = 0.01) {
    push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).groups(groups).bias(false)));
    push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(eps).momentum(momentum)));
    if (act != activation::none) push_back(Activation(act));
  }
  torch::Tensor forward(const torch::Tensor& x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(ConvBnAct);

// torchvision's SqueezeExcitation with a hardsigmoid scale: avgpool, fc1, ReLU, fc2.
class SqueezeExcitationImpl : public torch::nn::Module {
 public:
  SqueezeExcitationImpl(std::int64_t channels, std::int64_t squeezed) {
    fc1_ = register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, squeezed, 1)));
    fc2_ = register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeezed, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto scale = torch::adaptive_avg_pool2d(x, {1, 1});
    return torch::hardsigmoid(fc2_(torch::relu(fc1_(scale)))) * x;
  }

 private:
  torch::nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(SqueezeExcitation);

// One row of torchvision's table: input, kernel, expanded, output, squeeze-and-excitation,
// hardswish (else ReLU), stride.
struct bneck {
  std::int64_t in, kernel, expanded, out;
  bool se, hardswish;
  std::int64_t stride;
};

// torchvision's MobileNetV3 InvertedResidual: `block`, a Sequential; a shortcut when the shape stays.
class BottleneckV3Impl : public torch::nn::Module {
 public:
  explicit BottleneckV3Impl(const bneck& c) : shortcut_(c.stride == 1 && c.in == c.out) {
    const auto act = c.hardswish ? activation::hardswish : activation::relu;
    torch::nn::Sequential layers;
    if (c.expanded != c.in) layers->push_back(ConvBnAct(c.in, c.expanded, 1, 1, 1, act));
    layers->push_back(ConvBnAct(c.expanded, c.expanded, c.kernel, c.stride, c.expanded, act));
    if (c.se) layers->push_back(SqueezeExcitation(c.expanded, make_divisible(static_cast<double>(c.expanded / 4), 8)));
    layers->push_back(ConvBnAct(c.expanded, c.out, 1, 1, 1, activation::none));
    block_ = register_module("block", layers);
  }
  torch::Tensor forward(const torch::Tensor& x) { return shortcut_ ? block_->forward(x) + x : block_->forward(x); }

 private:
  bool shortcut_;
  torch::nn::Sequential block_{nullptr};
};
TORCH_MODULE(BottleneckV3);

}  // namespace detail

/// torchvision's MobileNetV3, large or small (width multiplier 1.0, no reduced tail).
class MobileNetV3Impl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 3;
  static constexpr std::array<std::string_view, depth> stages{"features", "avgpool", "classifier"};
  static constexpr std::string_view classifier_prefix = "classifier.3.";

  MobileNetV3Impl(bool large, const mobilenet_options& options = {}) : width_(large ? 1280 : 1024) {
    using detail::bneck;
    static constexpr std::array<bneck, 15> large_table{{{16, 3, 16, 16, false, false, 1},   {16, 3, 64, 24, false, false, 2},
                                                        {24, 3, 72, 24, false, false, 1},   {24, 5, 72, 40, true, false, 2},
                                                        {40, 5, 120, 40, true, false, 1},   {40, 5, 120, 40, true, false, 1},
                                                        {40, 3, 240, 80, false, true, 2},   {80, 3, 200, 80, false, true, 1},
                                                        {80, 3, 184, 80, false, true, 1},   {80, 3, 184, 80, false, true, 1},
                                                        {80, 3, 480, 112, true, true, 1},   {112, 3, 672, 112, true, true, 1},
                                                        {112, 5, 672, 160, true, true, 2},  {160, 5, 960, 160, true, true, 1},
                                                        {160, 5, 960, 160, true, true, 1}}};
    static constexpr std::array<bneck, 11> small_table{{{16, 3, 16, 16, true, false, 2},  {16, 3, 72, 24, false, false, 2},
                                                        {24, 3, 88, 24, false, false, 1}, {24, 5, 96, 40, true, true, 2},
                                                        {40, 5, 240, 40, true, true, 1},  {40, 5, 240, 40, true, true, 1},
                                                        {40, 5, 120, 48, true, true, 1},  {48, 5, 144, 48, true, true, 1},
                                                        {48, 5, 288, 96, true, true, 2},  {96, 5, 576, 96, true, true, 1},
                                                        {96, 5, 576, 96, true, true, 1}}};
    const std::span<const bneck> table = large ? std::span<const bneck>(large_table) : std::span<const bneck>(small_table);
    torch::nn::Sequential features;
    features->push_back(detail::ConvBnAct(3, table.front().in, 3, 2, 1, detail::activation::hardswish));
    for (const auto& row : table) features->push_back(detail::BottleneckV3(row));
    const std::int64_t last = 6 * table.back().out;
    features->push_back(detail::ConvBnAct(table.back().out, last, 1, 1, 1, detail::activation::hardswish));
    features_ = register_module("features", features);
    avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
    torch::nn::Sequential classifier(torch::nn::Linear(last, width_), detail::Activation(detail::activation::hardswish),
                                     torch::nn::Dropout(options.dropout));
    if (options.classifier) classifier->push_back(torch::nn::Linear(width_, options.classes));
    classifier_ = register_module("classifier", classifier);
    has_classifier_ = options.classifier;
    for (auto& m : modules(/*include_self=*/false)) {  // torchvision's initialisation
      if (auto* c = m->as<torch::nn::Conv2d>()) {
        torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut);
        if (c->bias.defined()) torch::nn::init::zeros_(c->bias);
      } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
        torch::nn::init::ones_(bn->weight);
        torch::nn::init::zeros_(bn->bias);
      } else if (auto* fc = m->as<torch::nn::Linear>()) {
        torch::nn::init::normal_(fc->weight, 0.0, 0.01);
        torch::nn::init::zeros_(fc->bias);
      }
    }
  }

  /// The hidden features [N, width()], or logits with the classifier.
  torch::Tensor forward(const torch::Tensor& x) {
    return classifier_->forward(avgpool_->forward(features_->forward(x)).flatten(1));
  }
  [[nodiscard]] std::int64_t width() const noexcept { return width_; }
  [[nodiscard]] bool has_classifier() const noexcept { return has_classifier_; }

 private:
  std::int64_t width_;
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  bool has_classifier_ = false;
};

/// torchvision's mobilenet_v3_large (Large) or mobilenet_v3_small: default-constructed the
/// backbone, with options the model.
template <bool Large>
class mobilenet_v3 : public torch::nn::ModuleHolder<MobileNetV3Impl> {
 public:
  using Impl = MobileNetV3Impl;
  using options_type = mobilenet_options;
  static constexpr std::int64_t width = Large ? 1280 : 1024;
  mobilenet_v3() : mobilenet_v3(mobilenet_options{}) {}
  explicit mobilenet_v3(const mobilenet_options& options)
      : torch::nn::ModuleHolder<MobileNetV3Impl>(std::make_shared<MobileNetV3Impl>(Large, options)) {}
  mobilenet_v3(std::nullptr_t) : torch::nn::ModuleHolder<MobileNetV3Impl>(nullptr) {}
  mobilenet_v3(std::shared_ptr<MobileNetV3Impl> impl) : torch::nn::ModuleHolder<MobileNetV3Impl>(std::move(impl)) {}
};
using mobilenet_v3_large = mobilenet_v3<true>;
using mobilenet_v3_small = mobilenet_v3<false>;

}  // namespace kiln::models
