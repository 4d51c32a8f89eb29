// kiln/io/atomic_file.hpp — writing a file so that a crash never leaves a half-written one.
//
// The content goes to a temporary file beside the target, is flushed to disk, and is renamed
// over the target: a reader sees the old file or the new one, never a mix, and a process
// killed mid-write leaves the previous file intact; the next write in that directory removes
// the temporary file such a process left.
//
//   kiln::atomic_write("run/model.pt", [&](const std::filesystem::path& tmp) { torch::save(m, tmp); });
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace kiln {
namespace detail {

KILN_DECL void fsync_path(const std::filesystem::path& path, int flags);

// Removes the temporary files (".<name>.tmp.<pid>") that writers killed mid-write left in
// `directory`: those whose process no longer exists.
KILN_DECL void remove_stale_temporaries(const std::filesystem::path& directory);

}  // namespace detail

/// Calls `write(temporary_path)`, then atomically replaces `path` by what it wrote.
/// Throws std::runtime_error naming the path and the reason when any part fails; the old
/// file at `path`, if any, is then untouched.
template <class Write>
void atomic_write(const std::filesystem::path& path, Write&& write) {
  namespace fs = std::filesystem;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path{"."};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(detail::concat("kiln: cannot write '", path.string(),
                                            "': the directory '", dir.string(),
                                            "' does not exist; create it first"));
  }
  // concat, not "." + string: g++ 12 warns falsely (-Wstringop-overflow) on that operator+.
  const fs::path tmp = dir / detail::concat('.', path.filename().string(), ".tmp.", ::getpid());
  try {
    write(tmp);
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    throw std::runtime_error(detail::concat("kiln: writing '", path.string(), "' failed (",
                                            e.what(), "); the previous file, if any, is intact"));
  }
  detail::fsync_path(tmp, O_RDONLY);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    fs::remove(tmp, ec);
    throw std::runtime_error(detail::concat("kiln: cannot replace '", path.string(),
                                            "': ", std::strerror(err)));
  }
  detail::fsync_path(dir, O_RDONLY | O_DIRECTORY);
  detail::remove_stale_temporaries(dir);
}

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void fsync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;  // nothing to flush is not an error; the rename below reports real ones
  ::fsync(fd);
  ::close(fd);
}

KILN_DECL void remove_stale_temporaries(const std::filesystem::path& directory) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    const auto mark = name.rfind(".tmp.");
    if (name.empty() || name[0] != '.' || mark == std::string::npos || mark + 5 >= name.size()) continue;
    const std::string digits = name.substr(mark + 5);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
