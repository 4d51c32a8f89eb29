// kiln/loop/accumulate.hpp — gradient accumulation.
//
// accumulate<K> adds up the gradients of K batches and takes one optimizer step for them:
// each batch's loss is divided by K, so K batches of size B train like one batch of K·B.
//
// The last window of an epoch may hold r < K batches. kiln still steps it, and scales it by
// its real size: its gradients are those of the mean loss over the r batches (the accumulated
// gradients are multiplied by K / r before the step). PyTorch Lightning also steps that window
// but keeps dividing by K, so its last step of an epoch is r/K times smaller.
//
// accumulate<1> (the default) compiles to the plain loop.
//
//   kiln::accumulate<4>{}
#pragma once

#include <kiln/core/role.hpp>

#include <cstddef>

namespace kiln {

template <std::size_t K>
struct accumulate {
  static_assert(K >= 1,
                "kiln::accumulate<K>: K is the number of batches per optimizer step and must be "
                "at least 1; write kiln::accumulate<1>, or leave the policy out, for no "
                "accumulation.");
  using kiln_role = role::accumulate;
  static constexpr std::size_t batches = K;
};

}  // namespace kiln
