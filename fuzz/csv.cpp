// Fuzzes the CSV parser behind kiln::data::read_csv (kiln/detail/csv.hpp) on text held in memory.
#include "fuzz.hpp"

#include <kiln/detail/csv.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const bool finite_only : {true, false}) {
    for (const bool single : {true, false}) {
      kiln::fuzz::expect_clear_error("fuzz.csv", [&] {
        const auto table = kiln::detail::parse_csv_numbers(text, "fuzz.csv", finite_only, single);
        kiln::fuzz::require(table.rows >= 1, "a table that reads has a row");
        kiln::fuzz::require(table.values.size() == static_cast<std::size_t>(table.rows) * table.columns.size(),
                            "every row has one value per column");
        for (const double v : table.values) {
          kiln::fuzz::require(!finite_only || std::isfinite(v), "finite_only reads finite numbers only");
          kiln::fuzz::require(!single || !std::isfinite(v) || std::abs(v) <= std::numeric_limits<float>::max(),
                              "single reads what float32 holds");
        }
      });
    }
  }
  return 0;
}
