// kiln/data/idx.hpp — reading IDX files (the MNIST format).
//
// An IDX file is a big-endian header — two zero bytes, a type code, the number of dimensions
// d, then d 32-bit sizes — followed by the data. kiln reads unsigned-byte files (type 0x08),
// the type MNIST uses for images and labels, and checks the header against the file's size.
//
// LibTorch's torch::data::datasets::MNIST reads the same files but insists on exactly 60,000
// training or 10,000 test samples; this reader takes the count from the header, so a subset
// (such as the 8,000/2,000 split scripts/prepare_mnist.sh makes) reads too.
//
//   torch::Tensor images = kiln::data::read_idx("data/mnist/train-images-idx3-ubyte");  // uint8 [N, 28, 28]
#pragma once

#include <kiln/detail/check.hpp>

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::data {

/// The contents of an unsigned-byte IDX file as a uint8 tensor of the header's shape.
/// Throws std::runtime_error naming the file and the problem when it is missing, not IDX,
/// of another element type, or shorter or longer than its header says.
inline torch::Tensor read_idx(const std::filesystem::path& path) {
  const std::string where = "kiln::data::read_idx('" + path.string() + "')";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(where + ": cannot open the file (run scripts/setup.sh to prepare the data)");
  std::array<unsigned char, 4> magic{};
  if (!in.read(reinterpret_cast<char*>(magic.data()), 4)) {
    throw std::runtime_error(where + ": the file is too short to be an IDX file");
  }
  if (magic[0] != 0 || magic[1] != 0) throw std::runtime_error(where + ": not an IDX file (bad magic number)");
  if (magic[2] != 0x08) {
    throw std::runtime_error(detail::concat(where, ": element type 0x", std::hex, int{magic[2]},
                                            " is not supported; only unsigned bytes (0x08) are"));
  }
  const int dims = magic[3];
  if (dims < 1 || dims > 4) throw std::runtime_error(detail::concat(where, ": ", dims, " dimensions; expected 1 to 4"));
  std::vector<std::int64_t> shape;
  std::uint64_t count = 1;
  for (int i = 0; i < dims; ++i) {
    std::array<unsigned char, 4> b{};
    if (!in.read(reinterpret_cast<char*>(b.data()), 4)) throw std::runtime_error(where + ": the header is truncated");
    const std::uint32_t size = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                               (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    shape.push_back(size);
    count *= size;
    if (count > (std::uint64_t{1} << 40)) throw std::runtime_error(where + ": the header's sizes are implausibly large");
  }
  const auto header = static_cast<std::uint64_t>(4 + 4 * dims);
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  if (ec || file_size != header + count) {
    throw std::runtime_error(detail::concat(where, ": the header promises ", count, " bytes of data but the file holds ",
                                            ec ? 0 : file_size - header, "; it is truncated or corrupt"));
  }
  auto out = torch::empty(shape, torch::kUInt8);
  in.read(reinterpret_cast<char*>(out.data_ptr<std::uint8_t>()), static_cast<std::streamsize>(count));
  if (!in) throw std::runtime_error(where + ": reading the data failed");
  return out;
}

}  // namespace kiln::data
