// kiln/model/freeze.hpp — keeping the first layers of a pretrained backbone fixed.
//
// freeze<N> freezes the first N top-level children of the backbone (in registration order):
//   - their parameters get requires_grad = false, so they receive no gradient and never change;
//   - their BatchNorm (and every other) layers stay in eval mode during training, so running
//     statistics do not change either;
//   - they stay in the optimizer's parameter groups, so unfreezing later changes no group.
// N larger than the backbone is a compile error when the backbone declares its depth, else an
// error when the trainer is built.
//
//   kiln::freeze<2>{}
#pragma once

#include <kiln/core/role.hpp>

#include <cstddef>

namespace kiln {

template <std::size_t N>
struct freeze {
  using kiln_role = role::freeze;
  static constexpr std::size_t children = N;
};

}  // namespace kiln
