// kiln/io/archive.hpp — writing a LibTorch archive so that a failed write is an exception.
#pragma once

#include <kiln/detail/check.hpp>

#include <torch/serialize/output-archive.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace kiln::detail {

/// Writes `archive` to `path`. LibTorch's own save_to(filename) throws from a destructor when a
/// write fails (a full disk), which ends the process; here every write goes through a function
/// that records the first failure and reports the bytes as taken, and the failure is thrown
/// after LibTorch is done.
inline void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error(concat("cannot create '", path.string(), "': ", std::strerror(errno)));
  int error = 0;
  archive.save_to([&](const void* data, std::size_t size) -> std::size_t {
    if (error == 0 && std::fwrite(data, 1, size, file) != size) error = errno != 0 ? errno : EIO;
    return size;
  });
  if (std::fflush(file) != 0 && error == 0) error = errno;
  if (std::fclose(file) != 0 && error == 0) error = errno;
  if (error != 0) throw std::runtime_error(concat("cannot write '", path.string(), "': ", std::strerror(error)));
}

}  // namespace kiln::detail
