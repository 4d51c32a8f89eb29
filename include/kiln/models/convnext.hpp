// kiln/models/convnext.hpp — torchvision's ConvNeXt-Tiny, Small and Base as LibTorch modules, with
// torchvision's parameter and buffer names, so that their weight files load strictly
// (kiln/models/pth.hpp).
//
//   kiln::models::convnext_tiny    stages of 3, 3, 9, 3 blocks, 96 → 768 channels     width 768
//   kiln::models::convnext_small   3, 3, 27, 3, 96 → 768                               width 768
//   kiln::models::convnext_base    3, 3, 27, 3, 128 → 1024                             width 1024
//
// A 4×4 patchify stem with LayerNorm, stages of CNBlocks (7×7 depthwise convolution, LayerNorm,
// Linear to 4×, GELU, Linear back, a learnt per-channel layer scale, stochastic depth rising
// linearly to 0.1, 0.4, 0.5), LayerNorm and a 2×2 convolution between stages. Default-constructed,
// the backbone keeps the classifier's LayerNorm (classifier.0) and returns [N, width]; with
// `.classifier = true` the whole model. Initialisation: convolutions and Linear layers
// truncated normal (std 0.02, within ±2), biases 0, as torchvision.
#pragma once

#include <kiln/models/layers.hpp>

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/init.h>
#include <torch/nn/functional/normalization.h>
#include <torch/types.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string_view>

namespace kiln::models {

struct convnext_options {
  bool classifier = false;      ///< keep the classifier's Linear: the whole model, logits
  std::int64_t classes = 1000;  ///< its outputs
};

/// A variant: the first stage's channels (doubling at each stage), the third stage's blocks,
/// and the stochastic depth of the last block.
struct convnext_spec {
  std::int64_t channels = 96;
  std::int64_t third_stage_blocks = 9;
  double stochastic_depth = 0.1;
  [[nodiscard]] constexpr std::int64_t width() const { return channels * 8; }
};

namespace detail {

// PyTorch's trunc_normal_: uniform over the normal's CDF between a and b, mapped back by erfinv.
inline void truncated_normal_(torch::Tensor& t, double std, double a = -2.0, double b = 2.0) {
  torch::NoGradGuard no_grad;
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double low = cdf(a / std), high = cdf(b / std);
  t.uniform_(2 * low - 1, 2 * high - 1).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(a, b);
}

// torchvision's LayerNorm2d: LayerNorm over the channels of [N, C, H, W] (eps 1e-6).
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(std::int64_t channels) : channels_(channels) {
    weight = register_parameter("weight", torch::ones({channels}));
    bias = register_parameter("bias", torch::zeros({channels}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::layer_norm(x.permute({0, 2, 3, 1}), {channels_}, weight, bias, 1e-6).permute({0, 3, 1, 2});
  }
  torch::Tensor weight, bias;

 private:
  std::int64_t channels_;
};
TORCH_MODULE(LayerNorm2d);

// torchvision's Permute, as a module in a Sequential.
class PermuteImpl : public torch::nn::Module {
 public:
  explicit PermuteImpl(std::array<std::int64_t, 4> order) : order_(order) {}
  torch::Tensor forward(const torch::Tensor& x) { return x.permute(order_); }

 private:
  std::array<std::int64_t, 4> order_;
};
TORCH_MODULE(Permute);

// torchvision's CNBlock: `block`, `layer_scale`, stochastic depth by rows.
class CNBlockImpl : public torch::nn::Module {
 public:
  CNBlockImpl(std::int64_t dim, double drop) : drop_(drop) {
    block_ = register_module(
        "block", torch::nn::Sequential(
                     torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)), Permute(std::array<std::int64_t, 4>{0, 2, 3, 1}),
                     torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)), torch::nn::Linear(dim, 4 * dim),
                     torch::nn::GELU(), torch::nn::Linear(4 * dim, dim), Permute(std::array<std::int64_t, 4>{0, 3, 1, 2})));
    layer_scale_ = register_parameter("layer_scale", torch::full({dim, 1, 1}, 1e-6));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return drop_rows(layer_scale_ * block_->forward(x), drop_, is_training()) + x;
  }

 private:
  double drop_;
  torch::nn::Sequential block_{nullptr};
  torch::Tensor layer_scale_;
};
TORCH_MODULE(CNBlock);

}  // namespace detail

class ConvNeXtImpl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 3;
  static constexpr std::array<std::string_view, depth> stages{"features", "avgpool", "classifier"};
  static constexpr std::string_view classifier_prefix = "classifier.2.";

  ConvNeXtImpl(const convnext_spec& spec, const convnext_options& options = {}) : width_(spec.width()) {
    const std::array<std::int64_t, 4> blocks{3, 3, spec.third_stage_blocks, 3};
    const std::int64_t total = blocks[0] + blocks[1] + blocks[2] + blocks[3];
    torch::nn::Sequential features;
    features->push_back(detail::Nested(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, spec.channels, 4).stride(4)),
                                       detail::LayerNorm2d(spec.channels)));
    std::int64_t block_id = 0, channels = spec.channels;
    for (std::size_t s = 0; s < 4; ++s) {
      detail::Nested stage;
      for (std::int64_t b = 0; b < blocks[s]; ++b) {
        stage->push_back(detail::CNBlock(channels, spec.stochastic_depth * static_cast<double>(block_id++) /
                                                       (static_cast<double>(total) - 1.0)));
      }
      features->push_back(stage);
      if (s < 3) {
        features->push_back(detail::Nested(detail::LayerNorm2d(channels),
                                           torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 2 * channels, 2).stride(2))));
        channels *= 2;
      }
    }
    features_ = register_module("features", features);
    avgpool_ = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
    torch::nn::Sequential classifier(detail::LayerNorm2d(width_), torch::nn::Flatten(torch::nn::FlattenOptions().start_dim(1)));
    if (options.classifier) classifier->push_back(torch::nn::Linear(width_, options.classes));
    classifier_ = register_module("classifier", classifier);
    has_classifier_ = options.classifier;
    for (auto& m : modules(/*include_self=*/false)) {  // torchvision's initialisation
      if (auto* c = m->as<torch::nn::Conv2d>()) {
        detail::truncated_normal_(c->weight, 0.02);
        torch::nn::init::zeros_(c->bias);
      } else if (auto* fc = m->as<torch::nn::Linear>()) {
        detail::truncated_normal_(fc->weight, 0.02);
        torch::nn::init::zeros_(fc->bias);
      }
    }
  }

  /// The normalised, pooled features [N, width()], or logits with the classifier.
  torch::Tensor forward(const torch::Tensor& x) { return classifier_->forward(avgpool_->forward(features_->forward(x))); }
  [[nodiscard]] std::int64_t width() const noexcept { return width_; }
  [[nodiscard]] bool has_classifier() const noexcept { return has_classifier_; }

 private:
  std::int64_t width_;
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  bool has_classifier_ = false;
};

/// The named ConvNeXts (kiln/models/layers.hpp: default-constructed, the backbone).
template <convnext_spec Spec>
using convnext_variant = architecture<ConvNeXtImpl, convnext_options, Spec>;

using convnext_tiny = convnext_variant<convnext_spec{96, 9, 0.1}>;
using convnext_small = convnext_variant<convnext_spec{96, 27, 0.4}>;
using convnext_base = convnext_variant<convnext_spec{128, 27, 0.5}>;

}  // namespace kiln::models
