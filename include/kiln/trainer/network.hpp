// kiln/trainer/network.hpp — assembling the network a trainer trains: the backbone (with its
// weights file loaded), the head on top of it, the frozen children of kiln::freeze<N>, and the
// optimizer's parameter groups with their discriminative learning rates.
//
// The network is head(backbone(x)), or backbone(x) without a head. With a head the optimizer has
// two groups, the backbone's (lr × backbone lr_ratio) and the head's (lr); frozen children stay
// in the backbone's group, so that unfreezing later changes no group.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/describe.hpp>
#include <kiln/model/weights.hpp>

#include <c10/util/Exception.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln::detail {

template <class Backbone, class Head>
class networkImpl : public torch::nn::Module {
 public:
  static constexpr bool has_head = !std::is_void_v<Head>;
  struct no_module {};
  using head_type = std::conditional_t<has_head, Head, no_module>;

  networkImpl(Backbone backbone, head_type head)
      : backbone_(register_module("backbone", std::move(backbone))), head_(std::move(head)) {
    if constexpr (has_head) head_ = register_module("head", std::move(head_));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    if constexpr (has_head) {
      const torch::Tensor features = backbone_->forward(x);
      try {
        return head_->forward(features);
      } catch (const c10::OutOfMemoryError&) {
        throw;
      } catch (const c10::Error& e) {  // LibTorch's message names neither the head nor the backbone
        throw std::invalid_argument(concat("kiln::head: the backbone's output ", describe(features),
                                           " does not fit the head: ", e.what_without_backtrace(),
                                           " (make the head's input size match the backbone's output)"));
      }
    } else {
      return backbone_->forward(x);
    }
  }

  [[nodiscard]] Backbone& backbone() noexcept { return backbone_; }
  [[nodiscard]] head_type& head() noexcept { return head_; }

 private:
  Backbone backbone_;
  [[no_unique_address]] head_type head_;
};

template <class Backbone, class Head>
class network : public torch::nn::ModuleHolder<networkImpl<Backbone, Head>> {
 public:
  using torch::nn::ModuleHolder<networkImpl<Backbone, Head>>::ModuleHolder;
};

/// The network of a kiln::backbone policy, whose options it checks, and a kiln::head or
/// kiln::no_head policy; the backbone's weights file, when it names one, is loaded first.
template <class Network, class BackbonePolicy, class HeadPolicy>
[[gnu::cold]] Network build_network(BackbonePolicy& backbone, HeadPolicy head) {
  validate_policy(backbone);
  if (!backbone.weights.empty()) load_weights(backbone.module, backbone.weights);
  if constexpr (Network::ContainedType::has_head) {
    return Network(backbone.module, std::move(head.module));
  } else {
    return Network(backbone.module, typename Network::ContainedType::head_type{});
  }
}

/// Freezes the first N top-level children of `backbone` (kiln/model/freeze.hpp) and returns them.
template <std::size_t N, class Backbone>
[[gnu::cold]] std::vector<std::shared_ptr<torch::nn::Module>> freeze_children(Backbone& backbone) {
  auto children = backbone->children();
  if (N > children.size()) {
    throw std::invalid_argument(concat("kiln::freeze<", N, ">: the backbone has only ", children.size(),
                                       " top-level children; freeze at most ", children.size()));
  }
  children.resize(N);
  for (const auto& child : children) {
    for (auto& p : child->parameters()) {
      p.requires_grad_(false);
      p.mutable_grad().reset();  // a stale gradient would still feed weight decay and momentum
    }
  }
  return children;
}

/// The learning rate of each parameter group: the backbone's, then the head's.
template <bool HasHead>
std::vector<double> group_rates(double lr, double backbone_lr_ratio) {
  if constexpr (HasHead) return {lr * backbone_lr_ratio, lr};
  return {lr};
}

/// The backbone's parameters, then the head's, each group with `options` at its own rate.
template <class Options, class Network>
[[gnu::cold]] std::vector<torch::optim::OptimizerParamGroup> param_groups(Network& network, const Options& options,
                                                                          const std::vector<double>& rates) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto group = [&](std::vector<torch::Tensor> params, double lr) {
    auto group_options = std::make_unique<Options>(options);
    group_options->lr(lr);
    groups.emplace_back(std::move(params), std::move(group_options));
  };
  group(network->backbone()->parameters(), rates[0]);
  if constexpr (Network::ContainedType::has_head) group(network->head()->parameters(), rates[1]);
  return groups;
}

/// LibTorch 2.x's optimizers give a group's option that equals its options class's default
/// (SGD's lr 1e-3, say) the optimizer's default instead, so a backbone rate that happens to be
/// exactly that would become the head's: the rates are set again once the groups are in place.
template <class Options, class Optimizer>
[[gnu::cold]] Optimizer& with_group_rates(Optimizer& optimizer, const std::vector<double>& rates) {
  for (std::size_t i = 0; i < rates.size(); ++i) {
    static_cast<Options&>(optimizer.param_groups()[i].options()).lr(rates[i]);
  }
  return optimizer;
}

}  // namespace kiln::detail
