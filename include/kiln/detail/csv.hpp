// kiln/detail/csv.hpp — the CSV syntax kiln writes (its loggers, submissions) and reads
// (kiln::data::read_csv): RFC 4180 quoting, "\n" or "\r\n" line ends. Without LibTorch, so
// that fuzz/csv.cpp can fuzz the parser on its own.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace kiln::detail {

/// `text` as one CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180),
/// as a table cell's name does ("val/confusion_matrix[3,5]").
KILN_DECL std::string csv_field(std::string_view text);

/// What reading one CSV record found.
enum class csv_status {
  record,              ///< a record was read
  end,                 ///< no text left
  unterminated_quote,  ///< a quoted field runs to the end of the text
  text_after_quote,    ///< a closing quote is followed by something other than ',' or a line end
};

/// Reads CSV text one record at a time. A quoted field may hold commas, doubled quotes and
/// line breaks; a quote inside an unquoted field is kept as it is.
///
///   kiln::detail::csv_reader in{text};
///   std::vector<std::string> fields;
///   while (in.next(fields) == kiln::detail::csv_status::record) { ... in.line() ... }
class csv_reader {
 public:
  explicit csv_reader(std::string_view text) noexcept : text_(text) {}

  /// The next record's fields, quoting undone, into `fields`. On an error, line() is the line
  /// of the record that holds it.
  KILN_DECL csv_status next(std::vector<std::string>& fields);

  /// The line (from 1) on which the record last read begins.
  [[nodiscard]] std::int64_t line() const noexcept { return line_; }

 private:
  std::string_view text_;
  std::size_t at_ = 0;
  std::int64_t line_ = 0;
  std::int64_t next_line_ = 1;
};

/// The fields of one CSV line, quoting undone; lenient: a malformed line gives the fields read
/// so far.
KILN_DECL std::vector<std::string> split_csv_line(std::string_view line);

KILN_DECL std::string_view trim_blanks(std::string_view s) noexcept;

/// Reads all of `text` as a number ("1", "-2.5e3", "+4", "nan", "inf").
KILN_DECL std::errc parse_number(std::string_view text, double& value) noexcept;

/// The numbers of a CSV table: its header's names and its rows, row after row.
struct csv_numbers {
  std::vector<std::string> columns;
  std::vector<double> values;  ///< rows × columns.size(), row-major
  std::int64_t rows = 0;
};

/// Parses CSV text as kiln::data::read_csv reads it; `where` begins every message
/// ("kiln::data::read_csv('<file>')"). `finite_only` refuses NaN and infinities; `single`
/// refuses numbers beyond float32's range.
KILN_DECL csv_numbers parse_csv_numbers(std::string_view text, const std::string& where, bool finite_only, bool single);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string{text};
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted += '"';
}

KILN_DECL std::vector<std::string> split_csv_line(std::string_view line) {
  std::vector<std::string> fields;
  csv_reader{line}.next(fields);
  if (fields.empty()) fields.emplace_back();  // an empty line is one empty field
  return fields;
}

KILN_DECL std::string_view trim_blanks(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

KILN_DECL std::errc parse_number(std::string_view text, double& value) noexcept {
  // from_chars takes no leading '+'; a number written with one is still a number, "+-1" is not.
  if (text.starts_with('+') && !text.starts_with("+-")) text.remove_prefix(1);
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc{} && end != text.data() + text.size()) return std::errc::invalid_argument;
  return error;
}

KILN_DECL csv_numbers parse_csv_numbers(std::string_view text, const std::string& where, bool finite_only,
                                        bool single) {
  csv_reader reader{text};
  std::vector<std::string> fields;
  // The first line that is not blank is the header.
  csv_status status{};
  auto next_nonblank = [&] {
    do {
      status = reader.next(fields);
    } while (status == csv_status::record && fields.size() == 1 && trim_blanks(fields[0]).empty());
    return status;
  };
  auto syntax_error = [&] {
    const bool quote = status == csv_status::unterminated_quote;
    return std::runtime_error(
        concat(where, ": line ", reader.line(),
               quote ? ": a quoted field is never closed (a '\"' is missing)"
                     : ": a closing '\"' is followed by more text in the same field; quote the whole field"));
  };
  if (next_nonblank() == csv_status::end) {
    throw std::runtime_error(where +
                             ": the file is empty; expected a header line naming the columns, then rows of numbers");
  }
  if (status != csv_status::record) throw syntax_error();

  csv_numbers table;
  table.columns = fields;
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (table.columns[i] == table.columns[j]) {
        throw std::runtime_error(concat(where, ": line ", reader.line(), ": columns ", j + 1, " and ", i + 1,
                                        " are both called '", table.columns[i], "'; give each column its own name"));
      }
    }
  }
  const std::size_t width = table.columns.size();
  while (next_nonblank() != csv_status::end) {
    if (status != csv_status::record) throw syntax_error();
    if (fields.size() != width) {
      throw std::runtime_error(concat(where, ": line ", reader.line(), " has ", fields.size(),
                                      fields.size() == 1 ? " field" : " fields", " but the header names ", width,
                                      width == 1 ? " column" : " columns"));
    }
    for (std::size_t c = 0; c < width; ++c) {
      const std::string_view field = trim_blanks(fields[c]);
      auto at = [&] {
        return concat(where, ": line ", reader.line(), ", column ", c + 1, " ('", table.columns[c], "')");
      };
      if (field.empty()) throw std::runtime_error(at() + " is empty; every cell must hold a number");
      double value = 0;
      const auto error = parse_number(field, value);
      if (error == std::errc::result_out_of_range) {
        throw std::runtime_error(at() + ": '" + std::string{field} + "' is out of the range of a double");
      }
      if (error != std::errc{}) throw std::runtime_error(at() + ": '" + std::string{field} + "' is not a number");
      if (finite_only && !std::isfinite(value)) {
        throw std::runtime_error(at() + ": '" + std::string{field} +
                                 "' is not a finite number (read with .finite_only = false to keep it)");
      }
      if (single && std::isfinite(value) && std::abs(value) > std::numeric_limits<float>::max()) {
        throw std::runtime_error(at() + ": '" + std::string{field} +
                                 "' is too large for float32 (read with .dtype = torch::kFloat64)");
      }
      table.values.push_back(value);
    }
    ++table.rows;
  }
  if (table.rows == 0) throw std::runtime_error(where + ": the file has a header but no rows of numbers");
  return table;
}

}  // namespace kiln::detail

namespace kiln::detail {

KILN_DECL csv_status csv_reader::next(std::vector<std::string>& fields) {
  fields.clear();
  if (at_ >= text_.size()) return csv_status::end;
  line_ = next_line_;
  fields.emplace_back();
  while (true) {
    if (at_ < text_.size() && text_[at_] == '"') {
      ++at_;
      while (true) {
        if (at_ >= text_.size()) return csv_status::unterminated_quote;
        const char c = text_[at_++];
        if (c == '"') {
          if (at_ < text_.size() && text_[at_] == '"') {
            fields.back() += '"';
            ++at_;
            continue;
          }
          break;
        }
        if (c == '\n') ++next_line_;
        fields.back() += c;
      }
      if (at_ < text_.size() && text_[at_] != ',' && text_[at_] != '\n' &&
          !(text_[at_] == '\r' && (at_ + 1 == text_.size() || text_[at_ + 1] == '\n'))) {
        return csv_status::text_after_quote;
      }
    } else {
      const auto stop = text_.find_first_of(",\n", at_);
      const auto end = stop == std::string_view::npos ? text_.size() : stop;
      auto field = text_.substr(at_, end - at_);
      if (field.ends_with('\r') && (end == text_.size() || text_[end] == '\n')) field.remove_suffix(1);
      fields.back() += field;
      at_ = end;
    }
    if (at_ < text_.size() && text_[at_] == '\r') ++at_;  // only before '\n' or the end (checked above)
    if (at_ >= text_.size()) return csv_status::record;
    if (text_[at_++] == '\n') {
      ++next_line_;
      return csv_status::record;
    }
    fields.emplace_back();  // a comma: another field follows
  }
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
