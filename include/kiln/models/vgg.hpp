// kiln/models/vgg.hpp — torchvision's VGG-11 and VGG-16, with and without BatchNorm, as LibTorch
// modules with torchvision's parameter and buffer names (kiln/models/pth.hpp loads their files).
//
//   kiln::models::vgg11, vgg11_bn, vgg16, vgg16_bn   width 4096
//
// Default-constructed, the backbone is torchvision's network without the classifier's last
// Linear (classifier.6): features, the 7×7 average pooling, and the two hidden Linear layers
// with their ReLU and dropout, whose pretrained weights transfer too; forward returns [N, 4096].
// With `.classifier = true` it is the whole model. Top-level children: features, avgpool,
// classifier. torchvision's initialisation: convolutions Kaiming-normal (fan_out, ReLU),
// BatchNorm 1 and 0, Linear normal(0, 0.01), biases 0.
#pragma once

#include <kiln/models/layers.hpp>

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/init.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace kiln::models {

struct vgg_options {
  bool classifier = false;      ///< keep the classifier's last Linear: the whole model, logits
  std::int64_t classes = 1000;  ///< its outputs
  double dropout = 0.5;         ///< after each hidden Linear
};

/// A VGG of torchvision's: 16 or 11 weight layers (`deep`), with or without BatchNorm.
struct vgg_spec {
  bool deep = false;        ///< VGG-16 (configuration D) rather than VGG-11 (A)
  bool batch_norm = false;  ///< BatchNorm after each convolution
  [[nodiscard]] constexpr std::int64_t width() const { return 4096; }
};

class VGGImpl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 3;
  static constexpr std::array<std::string_view, depth> stages{"features", "avgpool", "classifier"};
  static constexpr std::string_view classifier_prefix = "classifier.6.";

  explicit VGGImpl(const vgg_spec& spec, const vgg_options& options = {}) {
    constexpr std::int64_t pool = 0;  // a 2×2 max pooling in the configuration
    const std::vector<std::int64_t> a{64, pool, 128, pool, 256, 256, pool, 512, 512, pool, 512, 512, pool};
    const std::vector<std::int64_t> d{64,  64,  pool, 128, 128, pool, 256, 256, 256,
                                      pool, 512, 512, 512, pool, 512, 512, 512, pool};
    torch::nn::Sequential features;
    std::int64_t in = 3;
    for (const auto channels : spec.deep ? d : a) {
      if (channels == pool) {
        features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, channels, 3).padding(1)));
      if (spec.batch_norm) features->push_back(torch::nn::BatchNorm2d(channels));
      features->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
      in = channels;
    }
    features_ = register_module("features", features);
    avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({7, 7})));
    torch::nn::Sequential classifier(torch::nn::Linear(512 * 7 * 7, 4096), torch::nn::ReLU(torch::nn::ReLUOptions(true)),
                                     torch::nn::Dropout(options.dropout), torch::nn::Linear(4096, 4096),
                                     torch::nn::ReLU(torch::nn::ReLUOptions(true)), torch::nn::Dropout(options.dropout));
    if (options.classifier) classifier->push_back(torch::nn::Linear(4096, options.classes));
    classifier_ = register_module("classifier", classifier);
    detail::initialise(*this, torch::kReLU, [](torch::Tensor& w, std::int64_t) { torch::nn::init::normal_(w, 0.0, 0.01); });
    has_classifier_ = options.classifier;
  }

  /// The hidden features [N, 4096], or logits with the classifier.
  torch::Tensor forward(const torch::Tensor& x) {
    return classifier_->forward(avgpool_->forward(features_->forward(x)).flatten(1));
  }

  [[nodiscard]] bool has_classifier() const noexcept { return has_classifier_; }

 private:
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  bool has_classifier_ = false;
};

/// The named VGGs (kiln/models/layers.hpp: default-constructed, the backbone).
template <vgg_spec Spec>
using vgg_variant = architecture<VGGImpl, vgg_options, Spec>;

using vgg11 = vgg_variant<vgg_spec{.deep = false, .batch_norm = false}>;
using vgg11_bn = vgg_variant<vgg_spec{.deep = false, .batch_norm = true}>;
using vgg16 = vgg_variant<vgg_spec{.deep = true, .batch_norm = false}>;
using vgg16_bn = vgg_variant<vgg_spec{.deep = true, .batch_norm = true}>;

}  // namespace kiln::models
