// kiln/detail/network.hpp — the module a trainer trains: head(backbone(x)), or backbone(x).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <type_traits>
#include <utility>

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
      return head_->forward(backbone_->forward(x));
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

}  // namespace kiln::detail
