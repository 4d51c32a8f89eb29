// kiln/detail/name_chars.hpp — strings as template arguments: a literal such as the metric in
// kiln::reduce_on_plateau<"val/accuracy">, and metric names built at compile time
// ("f1_macro", "top5_accuracy", "ndcg@10") from a metric's template arguments.
//
// A metric's `name` is a `static constexpr std::string_view`; for a template such as
// kiln::top_k_accuracy<K> the characters must live somewhere for each K. They live in a
// template parameter object: one static, immutable object per distinct string. The characters
// are held without a terminating NUL, so names can be concatenated.
//
//   static constexpr std::string_view name =
//       detail::static_name<detail::name_chars("top") + detail::decimal<K>() + detail::name_chars("_accuracy")>;
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

namespace kiln::detail {

/// N characters, usable as a template argument (a structural type).
template <std::size_t N>
struct name_chars {
  std::array<char, N> chars{};

  constexpr name_chars() = default;
  constexpr name_chars(const char (&text)[N + 1]) { std::copy_n(text, N, chars.begin()); }  // NOLINT: implicit on purpose
  [[nodiscard]] constexpr std::string_view view() const { return {chars.data(), N}; }
};
template <std::size_t M>
name_chars(const char (&)[M]) -> name_chars<M - 1>;

template <std::size_t A, std::size_t B>
constexpr name_chars<A + B> operator+(const name_chars<A>& a, const name_chars<B>& b) {
  name_chars<A + B> out;
  std::copy_n(a.chars.begin(), A, out.chars.begin());
  std::copy_n(b.chars.begin(), B, out.chars.begin() + A);
  return out;
}

constexpr std::size_t decimal_digits(std::size_t value) {
  std::size_t digits = 1;
  for (; value >= 10; value /= 10) ++digits;
  return digits;
}

/// `Value` written in decimal: decimal<10>() is "10".
template <std::size_t Value>
constexpr name_chars<decimal_digits(Value)> decimal() {
  name_chars<decimal_digits(Value)> out;
  std::size_t value = Value;
  for (std::size_t i = out.chars.size(); i-- > 0; value /= 10) out.chars[i] = static_cast<char>('0' + value % 10);
  return out;
}

/// A view of `Text` that lives as long as the program (the template parameter object).
template <name_chars Text>
inline constexpr std::string_view static_name = Text.view();

}  // namespace kiln::detail
