// kiln/core/metric_values.hpp — named scalar results ("train/loss", "val/accuracy", ...).
#pragma once

#include <kiln/detail/linkage.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

/// The latest value of each named quantity, in the order they were first set.
/// A handful of entries: a flat vector beats a map here.
///
///   kiln::metric_values m;
///   m.set("val/loss", 0.31);
///   double loss = m.at("val/loss");
class metric_values {
 public:
  KILN_DECL void set(std::string_view name, double value);

  /// The value named `name`, or nullptr when it has not been computed.
  [[nodiscard]] const double* find(std::string_view name) const noexcept {
    for (const auto& [key, value] : entries_) {
      if (key == name) return &value;
    }
    return nullptr;
  }

  /// The value named `name`; throws std::out_of_range, naming the values there are, when it
  /// has not been computed.
  [[nodiscard]] KILN_DECL double at(std::string_view name) const;

  [[nodiscard]] bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }
  [[nodiscard]] auto begin() const noexcept { return entries_.begin(); }
  [[nodiscard]] auto end() const noexcept { return entries_.end(); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, double>> entries_;
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void metric_values::set(std::string_view name, double value) {
  for (auto& [key, old] : entries_) {
    if (key == name) {
      old = value;
      return;
    }
  }
  entries_.emplace_back(std::string{name}, value);
}

KILN_DECL double metric_values::at(std::string_view name) const {
  if (const double* value = find(name)) return *value;
  std::string known;
  for (const auto& [key, value] : entries_) known += (known.empty() ? "" : ", ") + key;
  throw std::out_of_range("kiln::metric_values: no value named '" + std::string{name} +
                          "'; the values computed are: " + (known.empty() ? "(none)" : known));
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
