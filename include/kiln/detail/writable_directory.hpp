// kiln/detail/writable_directory.hpp — finding out, before any work is done, that an output
// directory cannot take files.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

namespace kiln::detail {

/// Throws, naming the reason, unless a file can be created in `directory`: tried by creating and
/// removing a file, since permissions alone do not tell (root ignores them; a read-only file
/// system does not).
KILN_DECL void check_writable_directory(const std::filesystem::path& directory, std::string_view who);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void check_writable_directory(const std::filesystem::path& directory, std::string_view who) {
  const auto probe = directory / concat(".kiln-write-test.", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) return;  // another fit of this process is probing: the directory takes files
    throw std::runtime_error(concat(who, ": cannot write in the directory '", directory.string(),
                                    "': ", std::strerror(error), "; choose a directory this process can write to"));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
