// kiln/model/backbone.hpp — the network a pipeline trains or fine-tunes.
//
// `backbone<M>` takes any torch::nn module holder M (a type made with TORCH_MODULE, a
// torch::nn::Sequential, or kiln::scripted for a TorchScript file) whose forward maps one
// tensor to one tensor. Its weights can come from a file that an earlier run saved.
//
//   kiln::backbone<SmallCnn>{}                                      // fresh weights
//   kiln::backbone<SmallCnn>{.weights = "pretrained.pt", .lr_ratio = 0.1}
//   kiln::backbone<kiln::scripted>{.module = kiln::scripted{"resnet_traced.pt"}}
//
// A module type may declare its number of top-level children as `static constexpr
// std::size_t depth` in its Impl; kiln::freeze<N> then checks N against it at compile time.
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <concepts>
#include <cstddef>
#include <string>

namespace kiln {

/// A module holder whose forward maps a tensor to a tensor.
template <class M>
concept ForwardModule = requires(M& m, const torch::Tensor& x) {
  { m.ptr() } -> std::convertible_to<std::shared_ptr<torch::nn::Module>>;
  { m->forward(x) } -> std::convertible_to<torch::Tensor>;
};

/// The number of top-level children a module type declares, when it declares it.
template <class M>
concept DeclaresDepth = requires {
  { M::ContainedType::depth } -> std::convertible_to<std::size_t>;
};

template <class M>
struct backbone {
  static_assert(ForwardModule<M>,
                "kiln::backbone<M>: M must be a torch::nn module holder (TORCH_MODULE(Name), "
                "torch::nn::Sequential, kiln::scripted) whose forward takes one torch::Tensor "
                "and returns one; M is named in the 'with M = ...' note below.");
  using kiln_role = role::backbone;
  using module_type = M;

  M module = M{};
  std::string weights{};  ///< file saved by kiln::save_weights or torch::save; empty: keep `module`'s
  double lr_ratio = 1.0;  ///< backbone learning rate = optimizer lr × lr_ratio (when there is a head)

  /// The runtime options by name, for kiln::config ("backbone.weights", "backbone.lr_ratio").
  template <class F>
  void each_option(F&& f) { f("weights", weights); f("lr_ratio", lr_ratio); }

  void validate() const { detail::check_non_negative("kiln::backbone", "lr_ratio", lr_ratio); }
};

}  // namespace kiln
