// kiln/detail/idx_header.hpp — the header of an IDX file, read and checked without LibTorch
// (so that fuzz/idx.cpp can fuzz it on its own; kiln/data/idx.hpp makes the tensor).
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <istream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::detail {

/// What an unsigned-byte IDX header says: the shape, and the number of bytes of data after it.
struct idx_header {
  std::vector<std::int64_t> shape;
  std::uint64_t data_bytes = 0;
};

/// Reads the header of an unsigned-byte IDX file of `size` bytes from `in`, leaving `in` at the
/// first byte of data. Throws std::runtime_error beginning with `where` when the file is not
/// IDX, holds another element type, or holds more or fewer bytes than the header promises.
KILN_DECL idx_header read_idx_header(std::istream& in, std::uint64_t size, const std::string& where);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL idx_header read_idx_header(std::istream& in, std::uint64_t size, const std::string& where) {
  // The magic number, then the big-endian 32-bit size of each dimension.
  const auto read_word = [&in](std::array<unsigned char, 4>& b) {
    return static_cast<bool>(in.read(reinterpret_cast<char*>(b.data()), 4));
  };
  std::array<unsigned char, 4> magic{};
  if (!read_word(magic)) throw_runtime_error(where, "the file is too short to be an IDX file");
  if (magic[0] != 0 || magic[1] != 0) throw_runtime_error(where, "not an IDX file (bad magic number)");
  if (magic[2] != 0x08) {
    char hex[2];
    const auto hex_end = std::to_chars(hex, hex + sizeof hex, magic[2], 16).ptr;
    throw_runtime_error(where, concat("element type 0x", std::string_view(hex, hex_end),
                                      " is not supported; only unsigned bytes (0x08) are"));
  }
  const int dims = magic[3];
  if (dims < 1 || dims > 4) throw_runtime_error(where, concat(dims, " dimensions; expected 1 to 4"));
  // More than this many bytes is no data set kiln reads (1 TiB); checked before each
  // multiplication, so that the product of four 32-bit sizes never wraps around 2^64.
  constexpr std::uint64_t most = std::uint64_t{1} << 40;
  idx_header header;
  std::uint64_t count = 1;
  for (int i = 0; i < dims; ++i) {
    std::array<unsigned char, 4> b{};
    if (!read_word(b)) throw_runtime_error(where, "the header is truncated");
    const std::uint32_t extent =
        (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    header.shape.push_back(extent);
    if (extent != 0 && count > most / extent) {
      std::string sizes;
      for (const auto s : header.shape) sizes += concat(sizes.empty() ? "" : " x ", s);
      throw_runtime_error(where, concat("the header's sizes ", sizes, i + 1 < dims ? " x ..." : "",
                                        " are implausibly large (over 2^40 bytes); the file is corrupt"));
    }
    count *= extent;
  }
  const auto header_bytes = static_cast<std::uint64_t>(4 + 4 * dims);
  if (size != header_bytes + count) {
    throw_runtime_error(where, concat("the header promises ", count, " bytes of data but the file holds ",
                                      size - header_bytes, "; it is truncated or corrupt"));
  }
  header.data_bytes = count;
  return header;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
