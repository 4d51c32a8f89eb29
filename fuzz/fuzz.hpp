// What every kiln fuzz target checks: a reader of outside input either returns a result or
// throws a std::exception whose message begins with the reader's name; anything else — a
// sanitizer report, another exception, a crash — stops the fuzzer with the input that caused it.
//
// The targets fuzz the readers' cores, which kiln keeps free of LibTorch (the tensor is made
// from their result in a few lines): clang 14 cannot compile LibTorch 1.13's headers as C++20
// against libstdc++ 12 (std::vector<c10::IValue> of an incomplete type in ATen/core/List.h),
// and a target without LibTorch starts in milliseconds and runs thousands of inputs a second.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

namespace kiln::fuzz {

/// Runs `read()`; aborts unless it returns or throws a std::exception whose message starts
/// with `where`.
template <class Read>
void expect_clear_error(std::string_view where, Read&& read) {
  try {
    read();
  } catch (const std::exception& e) {
    if (!std::string_view{e.what()}.starts_with(where)) {
      std::fprintf(stderr, "a message that does not name the reader: %s\n", e.what());
      std::abort();
    }
  }
}

/// Aborts with `what` unless `ok`: a property of a successful read that does not hold.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace kiln::fuzz
