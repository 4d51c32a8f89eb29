// kiln/models/efficientnet.hpp — torchvision's EfficientNet-B0 to B7 as LibTorch modules, with
// torchvision's parameter and buffer names, so that their weight files load strictly
// (kiln/models/pth.hpp).
//
//   kiln::models::efficientnet_b0 … efficientnet_b7   width 1280 1280 1408 1536 1792 2048 2304 2560
//
// B0's table of seven stages of MBConv blocks (SiLU, squeeze-and-excitation, stochastic depth
// rising linearly from 0 to 0.2 over the blocks), scaled in width and depth per variant as
// torchvision scales it (channels by _make_divisible, blocks by ceil); BatchNorm eps 0.001 and
// momentum 0.01 from B5 on; classifier: Dropout (0.2 to 0.5), Linear. In training mode, stochastic
// depth and dropout draw from LibTorch's generator in torchvision's order, so a seeded training
// step equals torchvision's. Default-constructed, the backbone: features, average pooling,
// [N, width]; with `.classifier = true` the whole model. Top-level children: features (and classifier).
#pragma once

#include <kiln/models/mobilenet.hpp>  // make_divisible, ConvBnAct, SqueezeExcitation, activations

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/init.h>
#include <torch/types.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string_view>

namespace kiln::models {

/// The options of an EfficientNet: MobileNets' (classifier, classes; dropout is the variant's
/// when left negative).
struct efficientnet_options {
  bool classifier = false;
  std::int64_t classes = 1000;
  double dropout = -1;  ///< before the classifier's Linear; < 0: the variant's (0.2 … 0.5)
};

/// A variant: width and depth multipliers, dropout, and whether BatchNorm is B5–B7's.
struct efficientnet_spec {
  double width_mult = 1.0;
  double depth_mult = 1.0;
  double dropout = 0.2;
  bool slow_batch_norm = false;  ///< eps 0.001, momentum 0.01 (B5–B7)
  [[nodiscard]] constexpr std::int64_t channels(std::int64_t c) const {
    return make_divisible(static_cast<double>(c) * width_mult, 8);
  }
  [[nodiscard]] constexpr std::int64_t width() const { return 4 * channels(320); }
};

namespace detail {

// torchvision's MBConv: `block` (expansion, depthwise, squeeze-and-excitation, projection) and,
// on the shortcut, stochastic depth by rows.
class MBConvImpl : public torch::nn::Module {
 public:
  MBConvImpl(std::int64_t in, std::int64_t out, std::int64_t expand, std::int64_t kernel, std::int64_t stride,
             double drop, double eps, double momentum)
      : shortcut_(stride == 1 && in == out), drop_(drop) {
    const std::int64_t expanded = make_divisible(static_cast<double>(in * expand), 8);
    torch::nn::Sequential layers;
    if (expanded != in) layers->push_back(ConvBnAct(in, expanded, 1, 1, 1, activation::silu, eps, momentum));
    layers->push_back(ConvBnAct(expanded, expanded, kernel, stride, expanded, activation::silu, eps, momentum));
    layers->push_back(SqueezeExcitation(expanded, std::max<std::int64_t>(1, in / 4), activation::silu, activation::sigmoid));
    layers->push_back(ConvBnAct(expanded, out, 1, 1, 1, activation::none, eps, momentum));
    block_ = register_module("block", layers);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = block_->forward(x);
    return shortcut_ ? drop_rows(y, drop_, is_training()) + x : y;
  }

 private:
  bool shortcut_;
  double drop_;
  torch::nn::Sequential block_{nullptr};
};
TORCH_MODULE(MBConv);

}  // namespace detail

class EfficientNetImpl : public torch::nn::Module {
 public:
  static constexpr std::size_t depth = 1;  // features (the classifier is not the backbone's)
  static constexpr std::array<std::string_view, depth> stages{"features"};
  static constexpr std::string_view classifier_prefix = "classifier.1.";

  EfficientNetImpl(const efficientnet_spec& spec, const efficientnet_options& options = {}) : width_(spec.width()) {
    // B0: expansion, kernel, stride, input, output, blocks.
    constexpr std::array<std::array<std::int64_t, 6>, 7> table{{{1, 3, 1, 32, 16, 1},    {6, 3, 2, 16, 24, 2},
                                                                {6, 5, 2, 24, 40, 2},    {6, 3, 2, 40, 80, 3},
                                                                {6, 5, 1, 80, 112, 3},   {6, 5, 2, 112, 192, 4},
                                                                {6, 3, 1, 192, 320, 1}}};
    const double eps = spec.slow_batch_norm ? 0.001 : 1e-5, momentum = spec.slow_batch_norm ? 0.01 : 0.1;
    auto blocks_of = [&](std::int64_t n) { return static_cast<std::int64_t>(std::ceil(static_cast<double>(n) * spec.depth_mult)); };
    std::int64_t total = 0;
    for (const auto& row : table) total += blocks_of(row[5]);
    torch::nn::Sequential features;
    features->push_back(detail::ConvBnAct(3, spec.channels(32), 3, 2, 1, detail::activation::silu, eps, momentum));
    std::int64_t block_id = 0;
    for (const auto& [expand, kernel, stride, in, out, n] : table) {
      detail::Nested stage;
      for (std::int64_t b = 0; b < blocks_of(n); ++b) {
        const double drop = 0.2 * static_cast<double>(block_id++) / static_cast<double>(total);
        stage->push_back(detail::MBConv(b == 0 ? spec.channels(in) : spec.channels(out), spec.channels(out), expand, kernel,
                                        b == 0 ? stride : 1, drop, eps, momentum));
      }
      features->push_back(stage);
    }
    features->push_back(detail::ConvBnAct(spec.channels(320), width_, 1, 1, 1, detail::activation::silu, eps, momentum));
    features_ = register_module("features", features);
    if (options.classifier) {
      classifier_ = register_module(
          "classifier", torch::nn::Sequential(torch::nn::Dropout(options.dropout >= 0 ? options.dropout : spec.dropout),
                                              torch::nn::Linear(width_, options.classes)));
    }
    detail::initialise(*this, torch::kLeakyReLU, [](torch::Tensor& w, std::int64_t outputs) {
      const double range = 1.0 / std::sqrt(static_cast<double>(outputs));
      torch::nn::init::uniform_(w, -range, range);
    });
  }

  /// Pooled features [N, width()], or logits with the classifier.
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::adaptive_avg_pool2d(features_->forward(x), {1, 1}).flatten(1);
    return classifier_.is_empty() ? y : classifier_->forward(y);
  }
  [[nodiscard]] std::int64_t width() const noexcept { return width_; }
  [[nodiscard]] bool has_classifier() const noexcept { return !classifier_.is_empty(); }

 private:
  std::int64_t width_;
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
};

/// The named EfficientNets (kiln/models/layers.hpp: default-constructed, the backbone).
template <efficientnet_spec Spec>
using efficientnet_variant = architecture<EfficientNetImpl, efficientnet_options, Spec>;

using efficientnet_b0 = efficientnet_variant<efficientnet_spec{1.0, 1.0, 0.2, false}>;
using efficientnet_b1 = efficientnet_variant<efficientnet_spec{1.0, 1.1, 0.2, false}>;
using efficientnet_b2 = efficientnet_variant<efficientnet_spec{1.1, 1.2, 0.3, false}>;
using efficientnet_b3 = efficientnet_variant<efficientnet_spec{1.2, 1.4, 0.3, false}>;
using efficientnet_b4 = efficientnet_variant<efficientnet_spec{1.4, 1.8, 0.4, false}>;
using efficientnet_b5 = efficientnet_variant<efficientnet_spec{1.6, 2.2, 0.4, true}>;
using efficientnet_b6 = efficientnet_variant<efficientnet_spec{1.8, 2.6, 0.5, true}>;
using efficientnet_b7 = efficientnet_variant<efficientnet_spec{2.0, 3.1, 0.5, true}>;

}  // namespace kiln::models
