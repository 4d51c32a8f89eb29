// kiln/io/archive.hpp — writing and reading the LibTorch archives kiln keeps (checkpoints,
// weights): a failed write is an exception, and the file ends with a seal (kiln/detail/seal.hpp)
// that lets a reader find any damage before it loads a number.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/detail/seal.hpp>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kiln::detail {

/// An empty archive to write into. Made as torch::save makes its own: LibTorch's default
/// constructor builds the same thing in the header, which costs every translation unit that
/// writes an archive about 5 KB of code to compile.
inline torch::serialize::OutputArchive new_archive() {
  return torch::serialize::OutputArchive(std::make_shared<torch::jit::CompilationUnit>());
}

/// Writes `archive` to `path`, sealed. LibTorch's own save_to(filename) throws from a
/// destructor when a write fails (a full disk), which ends the process; here every write goes
/// through a function that records the first failure and reports the bytes as taken, and the
/// failure is thrown after LibTorch is done.
KILN_DECL void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path);

/// A file's bytes, checked by its seal, for load_archive.
struct sealed_bytes {
  std::string bytes;
  envelope_kind kind = envelope_kind::damaged;
  std::size_t payload_size = 0;
};

/// Checks the seal of a whole file's `bytes`; throws Error("<where>: <problem>") for damage.
template <class Error>
sealed_bytes check_seal(std::string bytes, const std::string& where) {
  const envelope e = open_envelope(bytes);
  if (e.kind == envelope_kind::damaged) throw Error(concat(where, ": ", e.problem));
  return {std::move(bytes), e.kind, e.payload_size};
}

/// Reads the file at `path` and checks its seal; throws Error naming `where` when the file is
/// missing, unreadable, truncated or corrupt.
template <class Error>
sealed_bytes read_sealed(const std::filesystem::path& path, const std::string& where) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(where + ": no such file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes;
  if (in) {
    bytes.resize(static_cast<std::size_t>(std::max<std::streamoff>(0, in.tellg())));
    in.seekg(0).read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  if (!in) throw Error(concat(where, ": cannot read it (", std::strerror(errno), ")"));
  return check_seal<Error>(std::move(bytes), where);
}

/// As above, from a stream holding a file's bytes.
template <class Error>
sealed_bytes read_sealed(std::istream& stream, const std::string& where) {
  std::string bytes{std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
  if (stream.bad()) throw Error(where + ": cannot read the stream");
  return check_seal<Error>(std::move(bytes), where);
}

/// Loads the archive that `file` holds; throws Error("<where>: not a LibTorch archive ...")
/// when LibTorch cannot read it.
template <class Error>
void load_archive(torch::serialize::InputArchive& archive, const sealed_bytes& file, const std::string& where) {
  try {
    archive.load_from(file.bytes.data(), file.payload_size);
  } catch (const std::exception& e) {  // c10::Error, and the TorchScript parser's errors
    throw Error(concat(where, ": not a LibTorch archive, or truncated or corrupt (", first_line(e.what()), ")"));
  }
}

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error(concat("cannot create '", path.string(), "': ", std::strerror(errno)));
  int error = 0;
  checksum sum;
  const auto put = [&](const void* data, std::size_t size) {
    if (error == 0 && std::fwrite(data, 1, size, file) != size) error = errno != 0 ? errno : EIO;
  };
  archive.save_to([&](const void* data, std::size_t size) -> std::size_t {
    sum.update(data, size);
    put(data, size);
    return size;
  });
  const std::string seal = make_seal(sum.size(), sum.value());
  put(seal.data(), seal.size());
  if (std::fflush(file) != 0 && error == 0) error = errno;
  if (std::fclose(file) != 0 && error == 0) error = errno;
  if (error != 0) throw std::runtime_error(concat("cannot write '", path.string(), "': ", std::strerror(error)));
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
