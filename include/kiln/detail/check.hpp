// kiln/detail/check.hpp — checking runtime options where they enter.
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln::detail {

template <class... Parts>
[[nodiscard]] std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
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
