// kiln/detail/check.hpp — checking runtime options where they enter.
#pragma once

#include <cmath>
#include <concepts>
#include <initializer_list>
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

/// One part of a message for concat(): text as it is, a number or any other value as
/// std::ostream writes it. Text and numbers are converted without a stream.
class text_part {
 public:
  text_part(const char* text) noexcept : view_(text) {}
  text_part(std::string_view text) noexcept : view_(text) {}
  text_part(const std::string& text) noexcept : view_(text) {}
  text_part(char c) : owned_(1, c) {}
  template <std::integral I>
    requires(!std::same_as<I, char> && !std::same_as<I, signed char> && !std::same_as<I, unsigned char>)
  text_part(I value) : owned_(std::to_string(value)) {}
  text_part(double value) : owned_(streamed(value)) {}
  template <class T>
    requires(!std::is_arithmetic_v<T> && !std::is_convertible_v<const T&, std::string_view>)
  text_part(const T& value) : owned_(streamed(value)) {}

  [[nodiscard]] std::string_view view() const noexcept { return owned_.empty() ? view_ : owned_; }

 private:
  std::string_view view_;
  std::string owned_;
};

[[nodiscard]] inline std::string concat_parts(std::initializer_list<text_part> parts) {
  std::size_t size = 0;
  for (const auto& part : parts) size += part.view().size();
  std::string out;
  out.reserve(size);
  for (const auto& part : parts) out += part.view();
  return out;
}

/// The parts written one after another, as `(std::ostringstream{} << ... << parts).str()`
/// would, without instantiating a stream for each combination of types.
template <class... Parts>
[[nodiscard]] std::string concat(const Parts&... parts) {
  return concat_parts({text_part(parts)...});
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
