// kiln/core/mode.hpp — whether smaller or larger values of a monitored metric are better.
#pragma once

#include <array>
#include <string_view>
#include <utility>

namespace kiln {

/// Used by kiln::early_stopping and kiln::model_checkpoint.
enum class mode { min, max };

/// The names of the modes, as kiln::config reads and writes them.
constexpr std::array<std::pair<std::string_view, mode>, 2> enum_names(mode) noexcept {
  return {{{"min", mode::min}, {"max", mode::max}}};
}

}  // namespace kiln
