// Fuzzes the IDX header reader behind kiln::data::read_idx (kiln/detail/idx_header.hpp) on
// files held in memory, then reads the data the header promises as read_idx does.
#include "fuzz.hpp"

#include <kiln/detail/idx_header.hpp>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  kiln::fuzz::expect_clear_error("fuzz.idx", [&] {
    std::istringstream in(bytes);
    const auto header = kiln::detail::read_idx_header(in, size, "fuzz.idx");
    kiln::fuzz::require(header.shape.size() >= 1 && header.shape.size() <= 4, "1 to 4 dimensions");
    std::uint64_t elements = 1;
    for (const auto extent : header.shape) {
      // torch::empty(shape) must be asked for exactly the bytes that follow: no wrapping.
      kiln::fuzz::require(!__builtin_mul_overflow(elements, static_cast<std::uint64_t>(extent), &elements),
                          "the shape's number of elements fits in 64 bits");
    }
    kiln::fuzz::require(elements == header.data_bytes, "one byte per element");
    kiln::fuzz::require(4 + 4 * header.shape.size() + header.data_bytes == size, "header and data fill the file");
    // What read_idx then does into the tensor's storage.
    std::vector<char> storage(header.data_bytes);
    in.read(storage.data(), static_cast<std::streamsize>(storage.size()));
    kiln::fuzz::require(static_cast<bool>(in), "the data is there");
    kiln::fuzz::require(storage.empty() || static_cast<std::uint8_t>(storage.back()) == data[size - 1],
                        "the last element is the file's last byte");
  });
  return 0;
}
