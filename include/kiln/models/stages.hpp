// kiln/models/stages.hpp — freezing a torchvision architecture up to a stage named as torchvision
// names it.
//
// An architecture of kiln::models lists its top-level children, in order, as `stages` (a ResNet:
// conv1, bn1, relu, maxpool, layer1 … layer4, avgpool). freeze_through<M, "layer2"> is
// kiln::freeze<N> with N the count of stages up to and including that one (6 for a ResNet), found
// at compile time: a name that is not one of M's stages is a compile error.
//
//   kiln::trainer t{kiln::backbone<kiln::models::resnet18>{},
//                   kiln::models::freeze_through<kiln::models::resnet18, "layer2">{}, ...};
#pragma once

#include <kiln/detail/name_chars.hpp>
#include <kiln/model/freeze.hpp>

#include <cstddef>
#include <string_view>

namespace kiln::models {
namespace detail {

template <class Holder, kiln::detail::name_chars Stage>
constexpr std::size_t stages_through() {
  using impl = typename Holder::Impl;
  constexpr auto& stages = impl::stages;
  constexpr std::size_t found = [] {
    for (std::size_t i = 0; i < stages.size(); ++i) {
      if (stages[i] == Stage.view()) return i + 1;
    }
    return std::size_t{0};
  }();
  static_assert(found > 0,
                "kiln::models::freeze_through<M, \"stage\">: M has no stage of that name (the name is in the "
                "instantiation note below); M::Impl::stages lists them, in order, as torchvision names them.");
  return found;
}

}  // namespace detail

/// kiln::freeze<N> through the stage named `Stage` of architecture M (see the file comment).
template <class M, kiln::detail::name_chars Stage>
using freeze_through = kiln::freeze<detail::stages_through<M, Stage>()>;

}  // namespace kiln::models
