// Shared by the compile-fail cases: a valid pipeline's parts, so that each case differs from a
// program that compiles in exactly the one misuse it tests.
//
// Every case is also built with KILN_CF_FIXED defined (target cf_<name>_fixed), which swaps
// the misuse for its correct form; that build must succeed, proving the case fails for one
// reason only.
#pragma once

#include <kiln/kiln.hpp>
#include <torch/torch.h>  // torch::nn::Linear; also precompiled, but not only then

#include <cstddef>

namespace cf {

// Two top-level children, declared as `depth` so that kiln::freeze<N> is checked at compile time.
struct TinyImpl : torch::nn::Module {
  static constexpr std::size_t depth = 2;

  TinyImpl()
      : fc1(register_module("fc1", torch::nn::Linear(4, 8))),
        fc2(register_module("fc2", torch::nn::Linear(8, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::relu(fc1->forward(x))); }

  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Tiny);

inline kiln::data::tensor_batches batches() {
  return {torch::randn({8, 4}), torch::randint(0, 3, {8}), {.batch_size = 4}};
}

}  // namespace cf
