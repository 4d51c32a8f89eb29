// kiln/detail/check.hpp — checking runtime options where they enter.
#pragma once

#include <kiln/detail/linkage.hpp>

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
// integer, a floating-point number or any other value as std::ostream writes it. All but the
// last are appended out of line: messages are built once per error or log line, and an inlined
// append is some fifty bytes of code in the caller for every part of every message (an integer
// written with std::to_chars, close to a kilobyte for each integer type).
// (Defined here, not at the end: g++ warns about an inline function declared noinline before
// its definition.)
#if KILN_FUNCTION_DEFINITIONS
[[gnu::noinline]] KILN_DECL void append_part(std::string& out, std::string_view text) { out += text; }
[[gnu::noinline]] KILN_DECL void append_part(std::string& out, char c) { out += c; }
[[gnu::noinline]] KILN_DECL void append_part(std::string& out, double value) { out += streamed(value); }
[[gnu::noinline]] KILN_DECL void append_integer(std::string& out, long long value) {
  char digits[24];  // enough for any 64-bit integer and its sign
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}
[[gnu::noinline]] KILN_DECL void append_integer(std::string& out, unsigned long long value) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}
#else
void append_part(std::string& out, std::string_view text);
void append_part(std::string& out, char c);
void append_part(std::string& out, double value);
void append_integer(std::string& out, long long value);
void append_integer(std::string& out, unsigned long long value);
#endif
template <std::integral I>
  requires(!std::same_as<I, char> && !std::same_as<I, signed char> && !std::same_as<I, unsigned char>)
void append_part(std::string& out, I value) {
  if constexpr (std::same_as<I, bool>) {
    out += value ? '1' : '0';  // as std::ostream writes a bool
  } else if constexpr (std::is_signed_v<I>) {
    append_integer(out, static_cast<long long>(value));
  } else {
    append_integer(out, static_cast<unsigned long long>(value));
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
[[noreturn, gnu::cold]] KILN_DECL void throw_runtime_error(const std::string& where, std::string_view problem);

/// The first line of an exception's message (LibTorch's carry a stack trace after it).
KILN_DECL std::string first_line(const char* what);

/// Throws std::invalid_argument("<where>: <name> must be <rule>, got <value>") unless `ok`.
template <class Value>
void check_option(bool ok, std::string_view where, std::string_view name, std::string_view rule,
                  const Value& value) {
  if (!ok) throw std::invalid_argument(concat(where, ": ", name, " must be ", rule, ", got ", value));
}

/// Checks a policy's runtime options: calls p.validate() when the policy has one.
template <class P>
void validate_policy(const P& p) {
  if constexpr (requires { p.validate(); }) p.validate();
}

/// Throws std::invalid_argument unless `value` is finite and >= 0 (check_non_negative), > 0
/// (check_positive) or in [low, high] (check_in_range).
KILN_DECL void check_non_negative(std::string_view where, std::string_view name, double value);
KILN_DECL void check_positive(std::string_view where, std::string_view name, double value);
KILN_DECL void check_in_range(std::string_view where, std::string_view name, double value, double low,
                              double high);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void throw_runtime_error(const std::string& where, std::string_view problem) {
  throw std::runtime_error(concat(where, ": ", problem));
}

KILN_DECL std::string first_line(const char* what) {
  std::string s{what};
  return s.substr(0, s.find('\n'));
}

KILN_DECL void check_non_negative(std::string_view where, std::string_view name, double value) {
  check_option(std::isfinite(value) && value >= 0.0, where, name, "a finite number >= 0", value);
}

KILN_DECL void check_positive(std::string_view where, std::string_view name, double value) {
  check_option(std::isfinite(value) && value > 0.0, where, name, "a finite number > 0", value);
}

KILN_DECL void check_in_range(std::string_view where, std::string_view name, double value, double low,
                              double high) {
  check_option(std::isfinite(value) && value >= low && value <= high, where, name,
               concat("in [", low, ", ", high, "]"), value);
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
