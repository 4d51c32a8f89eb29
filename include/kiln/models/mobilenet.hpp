// kiln/models/mobilenet.hpp — torchvision's MobileNetV2 as a LibTorch module, with torchvision's
// parameter and buffer names, so that its weight files load strictly (kiln/models/pth.hpp).
//
//   kiln::models::mobilenet_v2   features: a 3×3 stem, 17 inverted residual blocks, a 1×1 to 1280
//                                channels; width 1280; classifier: Dropout(0.2), Linear(1280, classes)
//
// Default-constructed it is the backbone (features, global average pooling; [N, 1280]); with
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

}  // namespace kiln::models
