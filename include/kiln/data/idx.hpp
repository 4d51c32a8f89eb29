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

#include <kiln/detail/idx_header.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kiln::data {

/// The contents of an unsigned-byte IDX file as a uint8 tensor of the header's shape.
/// Throws std::runtime_error naming the file and the problem when it is missing, not IDX,
/// of another element type, or shorter or longer than its header says.
KILN_DECL torch::Tensor read_idx(const std::filesystem::path& path);

}  // namespace kiln::data

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::data {

KILN_DECL torch::Tensor read_idx(const std::filesystem::path& path) {
  const std::string where = "kiln::data::read_idx('" + path.string() + "')";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(where + ": cannot open the file (run scripts/setup.sh to prepare the data)");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(where + ": cannot tell the file's size (" + ec.message() + ")");
  const auto header = detail::read_idx_header(in, size, where);
  auto out = torch::empty(header.shape, torch::kUInt8);
  in.read(reinterpret_cast<char*>(out.data_ptr<std::uint8_t>()), static_cast<std::streamsize>(header.data_bytes));
  if (!in) throw std::runtime_error(where + ": reading the data failed");
  return out;
}

}  // namespace kiln::data

#endif  // KILN_FUNCTION_DEFINITIONS
