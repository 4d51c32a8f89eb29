// kiln/detail/hyperparameters.hpp — the run's effective configuration (context::hyperparameters)
// as rows of a table, for the loggers that show it to a person.
//
// kiln::config writes a flat JSON object with one entry per line (see kiln/config/config.hpp):
//   {
//     "optimizer.lr": 0.002,
//     "callbacks.early_stopping.monitor": "val/loss"
//   }
// Reading that layout back line by line needs no JSON library, which would cost every file that
// includes kiln/kiln.hpp its compile time; text in any other layout becomes one row.
#pragma once

#include <kiln/detail/linkage.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::detail {

/// ("optimizer.lr", "0.002"), ("callbacks.early_stopping.monitor", "val/loss"), ... from the
/// configuration text; a string value loses its quotes when it has no escapes. Empty text gives
/// no rows; text not in kiln::config's layout gives one row, ("configuration", text).
KILN_DECL std::vector<std::pair<std::string, std::string>> configuration_rows(std::string_view json);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::vector<std::pair<std::string, std::string>> configuration_rows(std::string_view json) {
  std::vector<std::pair<std::string, std::string>> rows;
  if (json.empty()) return rows;
  const auto whole = std::vector<std::pair<std::string, std::string>>{{"configuration", std::string{json}}};
  std::size_t begin = 0;
  while (begin < json.size()) {
    std::size_t end = json.find('\n', begin);
    if (end == std::string_view::npos) end = json.size();
    std::string_view line = json.substr(begin, end - begin);
    begin = end + 1;
    if (line == "{" || line == "}" || line == "{}") continue;
    if (!line.starts_with("  \"")) return whole;
    line.remove_prefix(3);
    const auto close = line.find("\": ");
    if (close == std::string_view::npos) return whole;
    std::string_view value = line.substr(close + 3);
    if (value.ends_with(',')) value.remove_suffix(1);
    if (value.size() >= 2 && value.starts_with('"') && value.ends_with('"') &&
        value.find('\\') == std::string_view::npos) {
      value = value.substr(1, value.size() - 2);
    }
    rows.emplace_back(std::string{line.substr(0, close)}, std::string{value});
  }
  return rows;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
