// kiln/data/csv.hpp — reading a table of numbers from a CSV file.
//
// The first line names the columns; every other line is one row of numbers, one per column
// (RFC 4180 quoting, "\n" or "\r\n" line ends; blank lines are skipped; spaces around a number
// are allowed). Anything else is an error that names the file, the line, the column and what
// was found there, so that a broken table is fixed where it broke rather than trained on.
//
//   auto table = kiln::data::read_csv("data/breast_cancer.csv");     // float32 [569, 31]
//   torch::Tensor target = table.column("target");                   // float32 [569]
//   torch::Tensor features = table.values.narrow(1, 0, table.index_of("target"));
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/csv.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::data {

/// How read_csv converts the numbers.
struct csv_options {
  torch::Dtype dtype = torch::kFloat32;  ///< of the values: kFloat32 or kFloat64
  bool finite_only = true;               ///< "nan", "inf" are errors; false reads them as such

  void validate() const {
    detail::check_option(dtype == torch::kFloat32 || dtype == torch::kFloat64, "kiln::data::read_csv", "dtype",
                         "torch::kFloat32 or torch::kFloat64", dtype);
  }
};

/// A table of numbers: its column names and its values, one row per data line.
struct csv_table {
  std::vector<std::string> columns;
  torch::Tensor values;  ///< [rows, columns.size()], of csv_options::dtype
  std::string source;    ///< the file it came from, for messages

  /// The position of the column called `name`; throws std::out_of_range listing the columns
  /// there are when none is.
  [[nodiscard]] KILN_DECL std::int64_t index_of(std::string_view name) const;

  /// The values of the column called `name`, [rows].
  [[nodiscard]] torch::Tensor column(std::string_view name) const { return values.select(1, index_of(name)); }
};

/// The table in the CSV file at `path`. Throws std::runtime_error naming the file, and the line
/// and column where it applies, when the file is missing, empty, has no rows, has a row whose
/// number of fields differs from the header's, a cell that is empty or not a number (or not a
/// finite one, unless `.finite_only = false`), two columns of the same name, or broken quoting.
KILN_DECL csv_table read_csv(const std::filesystem::path& path, const csv_options& options = {});

}  // namespace kiln::data

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::data {

KILN_DECL csv_table read_csv(const std::filesystem::path& path, const csv_options& options) {
  options.validate();
  const std::string where = "kiln::data::read_csv('" + path.string() + "')";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(where + ": cannot open the file");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw std::runtime_error(where + ": reading the file failed");
  auto numbers = detail::parse_csv_numbers(text, where, options.finite_only, options.dtype == torch::kFloat32);
  const auto rows = numbers.rows, width = static_cast<std::int64_t>(numbers.columns.size());
  return {.columns = std::move(numbers.columns),
          .values = torch::tensor(numbers.values, torch::kFloat64).view({rows, width}).to(options.dtype),
          .source = path.string()};
}

}  // namespace kiln::data

namespace kiln::data {

KILN_DECL std::int64_t csv_table::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<std::int64_t>(i);
  }
  std::string known;
  for (const auto& column : columns) known += (known.empty() ? "'" : ", '") + column + "'";
  throw std::out_of_range(detail::concat("kiln::data::csv_table('", source, "'): no column is called '", name,
                                         "'; the columns are ", known));
}

}  // namespace kiln::data

#endif  // KILN_FUNCTION_DEFINITIONS
