// kiln/trainer/network.hpp — the module a trainer trains: head(backbone(x)), or backbone(x).
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/describe.hpp>

#include <c10/util/Exception.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <stdexcept>
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

}  // namespace kiln::detail
