// kiln/detail/check.hpp — checking runtime options where they enter.
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace kiln::detail {

/// `value` as std::ostream writes it by default.
template <class T>
[[nodiscard]] std::string streamed(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// The parts of a message for concat(), each appended to it: text as it is, a character, an
// integer, a floating-point number or any other value as std::ostream writes it. Text and
// characters are appended out of line: messages are built once per error or log line, and an
// inlined append is some fifty bytes of code in the caller for every part of every message.
[[gnu::noinline]] inline void append_part(std::string& out, std::string_view text) { out += text; }
[[gnu::noinline]] inline void append_part(std::string& out, char c) { out += c; }
inline void append_part(std::string& out, double value) { out += streamed(value); }
template <std::integral I>
  requires(!std::same_as<I, char> && !std::same_as<I, signed char> && !std::same_as<I, unsigned char>)
void append_part(std::string& out, I value) {
  if constexpr (std::same_as<I, bool>) {
    out += value ? '1' : '0';  // as std::ostream writes a bool
  } else {
    char digits[24];  // enough for any 64-bit integer and its sign
    out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
  }
}
template <class T>
  requires(!std::is_arithmetic_v<T> && !std::is_convertible_v<const T&, std::string_view>)
void append_part(std::string& out, const T& value) {
  out += streamed(value);
}

/// The parts written one after another, as `(std::ostringstream{} << ... << parts).str()`
/// would, without a stream for each combination of types: each part is appended by a function
/// of its own type, so a message costs its caller one call per part.
template <class... Parts>
[[nodiscard]] std::string concat(const Parts&... parts) {
  std::string out;
  (append_part(out, parts), ...);
  return out;
}

/// Throws std::runtime_error("<where>: <problem>"): the error path of kiln's file readers, kept
/// out of line.
[[noreturn, gnu::cold]] inline void throw_runtime_error(const std::string& where, std::string_view problem) {
  throw std::runtime_error(concat(where, ": ", problem));
}

/// The first line of an exception's message (LibTorch's carry a stack trace after it).
inline std::string first_line(const char* what) {
  std::string s{what};
  return s.substr(0, s.find('\n'));
}

/// Throws std::invalid_argument("<where>: <name> must be <rule>, got <value>") unless `ok`.
template <class Value>
void check_option(bool ok, std::string_view where, std::string_view name, std::string_view rule,
                  const Value& value) {
  if (!ok) throw std::invalid_argument(concat(where, ": ", name, " must be ", rule, ", got ", value));
}

inline void check_non_negative(std::string_view where, std::string_view name, double value) {
  check_option(std::isfinite(value) && value >= 0.0, where, name, "a finite number >= 0", value);
}

inline void check_positive(std::string_view where, std::string_view name, double value) {
  check_option(std::isfinite(value) && value > 0.0, where, name, "a finite number > 0", value);
}

inline void check_in_range(std::string_view where, std::string_view name, double value, double low,
                           double high) {
  check_option(std::isfinite(value) && value >= low && value <= high, where, name,
               concat("in [", low, ", ", high, "]"), value);
}

}  // namespace kiln::detail
