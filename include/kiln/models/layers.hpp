// kiln/models/layers.hpp — what kiln::models' architectures share: the holder every named
// variant is, torchvision's initialisation, stochastic depth, and a Sequential that nests.
#pragma once

#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>

namespace kiln::models {

/// A named architecture: `Impl` built from `Spec` and the options. Default-constructed, the
/// backbone (no classifier); with options (`.classifier = true`), the whole model.
///
///   kiln::models::resnet50 backbone;                                   // features [N, resnet50::width]
///   kiln::models::resnet50 model{{.classifier = true, .classes = 10}};  // logits
template <class ImplType, class Options, auto Spec>
class architecture : public torch::nn::ModuleHolder<ImplType> {
 public:
  using Impl = ImplType;
  using options_type = Options;
  static constexpr std::int64_t width = Spec.width();  ///< the backbone's output width
  architecture() : architecture(Options{}) {}
  explicit architecture(const Options& options) : torch::nn::ModuleHolder<Impl>(std::make_shared<Impl>(Spec, options)) {}
  architecture(std::nullptr_t) : torch::nn::ModuleHolder<Impl>(nullptr) {}
  architecture(std::shared_ptr<Impl> impl) : torch::nn::ModuleHolder<Impl>(std::move(impl)) {}
};

namespace detail {

/// torchvision's initialisation of `module`'s layers: convolutions Kaiming-normal (fan_out, with
/// `conv_gain`'s nonlinearity) and biases 0; BatchNorm weight 1, bias 0; each Linear by
/// `linear(weight)` with bias 0 (or left to LibTorch's default when `linear` is null).
template <class LinearInit>
void initialise(torch::nn::Module& module, torch::nn::init::NonlinearityType conv_gain, LinearInit linear) {
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, conv_gain);
      if (c->bias.defined()) torch::nn::init::zeros_(c->bias);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    } else if (auto* fc = m->as<torch::nn::Linear>()) {
      if constexpr (!std::is_same_v<LinearInit, std::nullptr_t>) {
        linear(fc->weight, fc->options.out_features());
        torch::nn::init::zeros_(fc->bias);
      }
    }
  }
}

/// torchvision's stochastic_depth(mode="row") in training: each sample's `y` kept with
/// probability 1 − p (and scaled by 1 / (1 − p)), drawn from LibTorch's generator.
inline torch::Tensor drop_rows(const torch::Tensor& y, double p, bool training) {
  if (!training || p <= 0.0) return y;
  const double survival = 1.0 - p;
  auto noise = torch::empty({y.size(0), 1, 1, 1}, y.options()).bernoulli_(survival);
  if (survival > 0.0) noise.div_(survival);
  return y * noise;
}

/// A Sequential that can sit inside another (LibTorch's cannot: its forward is a template).
class NestedImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(const torch::Tensor& x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Nested);

}  // namespace detail
}  // namespace kiln::models
