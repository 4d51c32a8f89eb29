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

#include <kiln/models/layers.hpp>

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

// The activations MobileNetV3 and EfficientNet use, as modules.
enum class activation { none, relu, relu6, hardswish, hardsigmoid, silu, sigmoid };

inline torch::Tensor activate(activation kind, const torch::Tensor& x) {
  switch (kind) {
    case activation::relu: return torch::relu(x);
    case activation::relu6: return torch::clamp(x, 0, 6);
    case activation::hardswish: return torch::hardswish(x);
    case activation::hardsigmoid: return torch::hardsigmoid(x);
    case activation::silu: return torch::silu(x);
    case activation::sigmoid: return torch::sigmoid(x);
    case activation::none: break;
  }
  return x;
}

class ActivationImpl : public torch::nn::Module {
 public:
  explicit ActivationImpl(activation kind = activation::relu) : kind_(kind) {}
  torch::Tensor forward(const torch::Tensor& x) { return activate(kind_, x); }

 private:
  activation kind_;
};
TORCH_MODULE(Activation);

// torchvision's Conv2dNormActivation: conv ("0"), BatchNorm ("1"), the activation ("2") if any;
// BatchNorm as MobileNetV3 makes it (eps 0.001, momentum 0.01) unless told otherwise.
class ConvBnActImpl : public NestedImpl {
 public:
  ConvBnActImpl(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride, std::int64_t groups,
                activation act, double eps = 0.001, double momentum = 0.01) {
    push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).groups(groups).bias(false)));
    push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(eps).momentum(momentum)));
    if (act != activation::none) push_back(Activation(act));
  }
};
TORCH_MODULE(ConvBnAct);

/// torchvision's InvertedResidual: `conv`, a Sequential of an optional 1×1 expansion, a 3×3
/// depthwise convolution and a 1×1 projection with its BatchNorm; a shortcut when the shape stays.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(std::int64_t in, std::int64_t out, std::int64_t stride, std::int64_t expand)
      : shortcut_(stride == 1 && in == out) {
    const std::int64_t hidden = in * expand;
    torch::nn::Sequential layers;
    if (expand != 1) layers->push_back(ConvBnAct(in, hidden, 1, 1, 1, activation::relu6, 1e-5, 0.1));
    layers->push_back(ConvBnAct(hidden, hidden, 3, stride, hidden, activation::relu6, 1e-5, 0.1));
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

/// MobileNetV2 has one variant (width multiplier 1.0).
struct mobilenet_v2_spec {
  [[nodiscard]] constexpr std::int64_t width() const { return 1280; }
};

class MobileNetV2Impl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 1;  // features (the classifier is not the backbone's)
  static constexpr std::array<std::string_view, depth> stages{"features"};
  static constexpr std::string_view classifier_prefix = "classifier.";

  explicit MobileNetV2Impl(const mobilenet_v2_spec& spec = {}, const mobilenet_options& options = {}) {
    // (expansion, channels, blocks, first stride), torchvision's table for width 1.0.
    constexpr std::array<std::array<std::int64_t, 4>, 7> table{{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}};
    torch::nn::Sequential features;
    features->push_back(detail::ConvBnAct(3, 32, 3, 2, 1, detail::activation::relu6, 1e-5, 0.1));
    std::int64_t in = 32;
    for (const auto& [expand, channels, blocks, stride] : table) {
      for (std::int64_t b = 0; b < blocks; ++b) {
        features->push_back(detail::InvertedResidual(in, channels, b == 0 ? stride : 1, expand));
        in = channels;
      }
    }
    features->push_back(detail::ConvBnAct(in, 1280, 1, 1, 1, detail::activation::relu6, 1e-5, 0.1));
    features_ = register_module("features", features);
    if (options.classifier) {
      classifier_ = register_module("classifier", torch::nn::Sequential(torch::nn::Dropout(options.dropout),
                                                                        torch::nn::Linear(spec.width(), options.classes)));
    }
    detail::initialise(*this, torch::kLeakyReLU, [](torch::Tensor& w, std::int64_t) { torch::nn::init::normal_(w, 0.0, 0.01); });
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

/// torchvision's mobilenet_v2 (kiln/models/layers.hpp: default-constructed, the backbone).
using mobilenet_v2 = architecture<MobileNetV2Impl, mobilenet_options, mobilenet_v2_spec{}>;

/// torchvision's _make_divisible: `v` rounded to the nearest multiple of `divisor` (at least
/// `divisor`), and up by one more when rounding lost more than a tenth.
constexpr std::int64_t make_divisible(double v, std::int64_t divisor) {
  std::int64_t rounded = static_cast<std::int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor;
  if (rounded < divisor) rounded = divisor;
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

namespace detail {

// torchvision's SqueezeExcitation: avgpool, fc1, `inner`, fc2, `scale` (MobileNetV3: ReLU and
// hardsigmoid; EfficientNet: SiLU and sigmoid).
class SqueezeExcitationImpl : public torch::nn::Module {
 public:
  SqueezeExcitationImpl(std::int64_t channels, std::int64_t squeezed, activation inner = activation::relu,
                        activation scale = activation::hardsigmoid)
      : inner_(inner), scale_(scale) {
    fc1_ = register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, squeezed, 1)));
    fc2_ = register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeezed, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto pooled = torch::adaptive_avg_pool2d(x, {1, 1});
    return activate(scale_, fc2_(activate(inner_, fc1_(pooled)))) * x;
  }

 private:
  activation inner_, scale_;
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

/// MobileNetV3 Large or Small (width multiplier 1.0, no reduced tail).
struct mobilenet_v3_spec {
  bool large = true;
  [[nodiscard]] constexpr std::int64_t width() const { return large ? 1280 : 1024; }
};

/// torchvision's MobileNetV3.
class MobileNetV3Impl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 3;
  static constexpr std::array<std::string_view, depth> stages{"features", "avgpool", "classifier"};
  static constexpr std::string_view classifier_prefix = "classifier.3.";

  MobileNetV3Impl(const mobilenet_v3_spec& spec, const mobilenet_options& options = {}) : width_(spec.width()) {
    const bool large = spec.large;
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
    detail::initialise(*this, torch::kLeakyReLU, [](torch::Tensor& w, std::int64_t) { torch::nn::init::normal_(w, 0.0, 0.01); });
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

/// torchvision's mobilenet_v3_large and mobilenet_v3_small (kiln/models/layers.hpp:
/// default-constructed, the backbone).
using mobilenet_v3_large = architecture<MobileNetV3Impl, mobilenet_options, mobilenet_v3_spec{.large = true}>;
using mobilenet_v3_small = architecture<MobileNetV3Impl, mobilenet_options, mobilenet_v3_spec{.large = false}>;

}  // namespace kiln::models
