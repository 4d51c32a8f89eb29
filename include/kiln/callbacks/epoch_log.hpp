// kiln/callbacks/epoch_log.hpp — what kiln's loggers record of an epoch, and the pieces they share:
// the row of named values, numbers written so that they read back exactly, tables of values
// ("val/confusion_matrix[3,5]") put back together, and files appended to safely.
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/detail/writable_directory.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace kiln::detail {

/// The name under which parameter group `group`'s learning rate is logged: "lr/group_0" is the
/// backbone, "lr/group_1" the head (kiln's trainer orders its groups so).
inline std::string learning_rate_name(std::size_t group) { return "lr/group_" + std::to_string(group); }

/// One epoch as the loggers write it.
struct epoch_row {
  std::int64_t epoch = 0;  ///< from 0, as ctx.epoch
  std::int64_t step = 0;   ///< optimizer steps taken so far, as ctx.step
  /// ctx.metrics in their order, then "lr/group_<i>" for each parameter group.
  std::vector<std::pair<std::string, double>> values;

  [[nodiscard]] KILN_DECL const double* find(std::string_view name) const noexcept;
};

/// Builds each epoch's row. The learning rates are those in force when the epoch began, the
/// rates its first step used (PyTorch Lightning's LearningRateMonitor logs the same): by the
/// end of an epoch the trainer has already moved them on to the next epoch's.
class epoch_recorder {
 public:
  // An epoch resumed part way from a checkpoint (ctx.batch > 0) began before it: the rates kept
  // from then (restored with the logger's state) stay.
  void begin(const context& ctx) {
    if (ctx.batch > 0 && learning_rates_) return;
    learning_rates_ = ctx.learning_rates;
  }

  /// The rates kept for the epoch under way (empty: none), for a checkpoint.
  template <class F>
  void each(F&& f) {
    std::vector<double> rates = learning_rates_.value_or(std::vector<double>{});
    f("epoch_learning_rates", rates);
    if (rates.empty()) {
      learning_rates_.reset();
    } else {
      learning_rates_ = std::move(rates);
    }
  }

  [[nodiscard]] KILN_DECL epoch_row take_row(const context& ctx);

 private:
  std::optional<std::vector<double>> learning_rates_;
};

/// The shortest decimal text that reads back as exactly `value` ("0.1", not
/// "0.10000000000000001"); "nan", "inf" and "-inf" for the values that are not finite.
KILN_DECL std::string format_number(double value);

/// A value that is one cell of a table: "val/confusion_matrix[3,5]" is cell (3, 5) of the table
/// "val/confusion_matrix" (kiln's metrics report a table-valued compute() so); "x[4]" is cell 4
/// of a one-dimensional table.
struct table_cell {
  std::string_view table;
  std::vector<std::int64_t> index;
};

KILN_DECL std::optional<table_cell> parse_table_cell(std::string_view name);

/// A one- or two-dimensional table of values put back together from its cells; a
/// one-dimensional table is one row. Cells that were not logged are NaN.
struct value_table {
  std::string name;
  std::int64_t rows = 0, columns = 0;
  std::vector<double> cells;  ///< row-major

  [[nodiscard]] double at(std::int64_t row, std::int64_t column) const {
    return cells[static_cast<std::size_t>(row * columns + column)];
  }
};

/// The tables among `values`, in the order their first cells appear. Cells of more than two
/// dimensions are left out: no logger draws them.
KILN_DECL std::vector<value_table> tables_in(const std::vector<std::pair<std::string, double>>& values);

/// Creates `directory` and those above it where missing; `who` names the logger in errors.
KILN_DECL void create_directories(const std::filesystem::path& directory, std::string_view who);

/// Checks a logger's `path` option, creates the directories above it where missing, and makes
/// sure a file can be written there — when the fit begins, not an epoch later.
KILN_DECL void prepare_log_file(const std::filesystem::path& path, std::string_view who);

/// Appends `bytes` to `path` and closes it again, so that whatever happens to the process later
/// the file holds every complete epoch written so far.
KILN_DECL void append_to_file(const std::filesystem::path& path, std::string_view bytes, std::string_view who);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return {text, end};
}

KILN_DECL std::optional<table_cell> parse_table_cell(std::string_view name) {
  const auto open = name.rfind('[');
  if (open == std::string_view::npos || open == 0 || !name.ends_with(']')) return std::nullopt;
  table_cell cell{.table = name.substr(0, open), .index = {}};
  const char* at = name.data() + open + 1;
  const char* const end = name.data() + name.size() - 1;
  while (true) {
    std::int64_t i = 0;
    const auto [next, error] = std::from_chars(at, end, i);
    if (error != std::errc{} || i < 0) return std::nullopt;
    cell.index.push_back(i);
    if (next == end) return cell;
    if (*next != ',') return std::nullopt;
    at = next + 1;
  }
}

KILN_DECL std::vector<value_table> tables_in(const std::vector<std::pair<std::string, double>>& values) {
  struct located {
    std::size_t table;
    std::int64_t row, column;
    double value;
  };
  std::vector<value_table> tables;
  std::vector<located> cells;
  for (const auto& [name, value] : values) {
    const auto cell = parse_table_cell(name);
    if (!cell || cell->index.size() > 2) continue;
    const bool matrix = cell->index.size() == 2;
    const std::int64_t row = matrix ? cell->index[0] : 0;
    const std::int64_t column = matrix ? cell->index[1] : cell->index[0];
    std::size_t t = 0;
    while (t < tables.size() && tables[t].name != cell->table) ++t;
    if (t == tables.size()) tables.push_back({.name = std::string{cell->table}, .rows = 0, .columns = 0, .cells = {}});
    tables[t].rows = std::max(tables[t].rows, row + 1);
    tables[t].columns = std::max(tables[t].columns, column + 1);
    cells.push_back({t, row, column, value});
  }
  for (auto& table : tables) {
    table.cells.assign(static_cast<std::size_t>(table.rows * table.columns),
                       std::numeric_limits<double>::quiet_NaN());
  }
  for (const auto& cell : cells) {
    auto& table = tables[cell.table];
    table.cells[static_cast<std::size_t>(cell.row * table.columns + cell.column)] = cell.value;
  }
  return tables;
}

KILN_DECL void create_directories(const std::filesystem::path& directory, std::string_view who) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    throw std::runtime_error(concat(who, ": cannot create the directory '", directory.string(), "': ",
                                    error.message()));
  }
}

KILN_DECL void prepare_log_file(const std::filesystem::path& path, std::string_view who) {
  check_option(!path.empty(), who, "path", "a file name", "\"\"");
  if (path.has_parent_path()) create_directories(path.parent_path(), who);
  check_writable_directory(path.has_parent_path() ? path.parent_path() : std::filesystem::path{"."}, who);
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw std::runtime_error(concat(who, ": '", path.string(), "' is a directory; name a file in it"));
  }
}

KILN_DECL void append_to_file(const std::filesystem::path& path, std::string_view bytes, std::string_view who) {
  auto fail = [&](int error) {
    throw std::runtime_error(concat(who, ": cannot append to '", path.string(), "': ", std::strerror(error),
                                    error == ENOSPC ? " (the disk is full)" : ""));
  };
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) fail(errno);
  for (std::size_t done = 0; done < bytes.size();) {
    const auto wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      const int error = wrote < 0 ? errno : ENOSPC;
      ::close(fd);
      fail(error);
    }
    done += static_cast<std::size_t>(wrote);
  }
  if (::close(fd) != 0 && errno != EINTR) fail(errno);
}

}  // namespace kiln::detail

namespace kiln::detail {

KILN_DECL const double* epoch_row::find(std::string_view name) const noexcept {
  for (const auto& [key, value] : values) {
    if (key == name) return &value;
  }
  return nullptr;
}

KILN_DECL epoch_row epoch_recorder::take_row(const context& ctx) {
  epoch_row row{.epoch = ctx.epoch, .step = ctx.step, .values = {}};
  row.values.reserve(ctx.metrics.size() + ctx.learning_rates.size());
  for (const auto& [name, value] : ctx.metrics) row.values.emplace_back(name, value);
  // Without an on_epoch_begin (hooks called by hand), the rates now in force are the best guess.
  const auto& rates = learning_rates_ ? *learning_rates_ : ctx.learning_rates;
  for (std::size_t group = 0; group < rates.size(); ++group) {
    auto name = learning_rate_name(group);
    // A callback (kiln::lr_monitor) may have put the rates into ctx.metrics already.
    if (!ctx.metrics.contains(name)) row.values.emplace_back(std::move(name), rates[group]);
  }
  learning_rates_.reset();
  return row;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
