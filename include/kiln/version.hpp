// kiln/version.hpp
#pragma once

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

namespace kiln {
inline constexpr int version_major = KILN_VERSION_MAJOR;
inline constexpr int version_minor = KILN_VERSION_MINOR;
inline constexpr int version_patch = KILN_VERSION_PATCH;
}  // namespace kiln
