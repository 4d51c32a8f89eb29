// kiln/callbacks/csv_logger.hpp — one CSV row per epoch, for a spreadsheet or pandas.
//
// kiln's loggers are callbacks; use any of them together:
//   kiln::csv_logger          a CSV table                                  csv_logger.hpp
//   kiln::jsonl_logger        one JSON object per line, for scripts        jsonl_logger.hpp
//   kiln::tensorboard_logger  event files that TensorBoard reads           tensorboard.hpp
//   kiln::html_report         one self-contained page of plots, to look at html_report.hpp
//
// Each writes at the end of every epoch, and only then (the values are already on the host:
// logging never synchronises the loop): the epoch (from 0), ctx.step, every entry of
// ctx.metrics ("train/loss", "val/loss", "val/accuracy", ...) and the learning rate of each
// parameter group as "lr/group_0" (the backbone) and "lr/group_1" (the head, when there is
// one) — the rates in force while the epoch trained, as PyTorch Lightning's LearningRateMonitor
// logs them.
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/csv.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/io/atomic_file.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {
namespace detail {

struct csv_log_state {
  epoch_recorder recorder;
  bool started = false;              ///< the first fit has begun
  bool file_written = false;         ///< `path` holds this logger's header
  std::vector<std::string> columns;  ///< the value columns, after epoch and step
  std::vector<std::string> lines;    ///< every data line, for when new columns widen them all

  // What a checkpoint keeps. A restored logger has file_written false, so its next row
  // rewrites the file from these lines: rows a killed run wrote after the checkpoint go away.
  template <class F>
  void each(F&& f) {
    f("started", started);
    f("columns", columns);
    f("lines", lines);
    recorder.each(f);
  }
};

}  // namespace detail

/// Writes one CSV row per epoch: `epoch,step,<each value>`; the header is the first epoch's
/// names. A value missing from an epoch is an empty cell. When a later epoch brings a new name
/// (a metric computed from some epoch on), the file is rewritten, atomically, with the new
/// column at the end and the earlier rows' cells in it left empty; otherwise each row is
/// appended and the file closed, so that a crashed run leaves a readable file of its complete
/// epochs. Numbers are written in the shortest form that reads back exactly.
///
/// The file is replaced by the first epoch of the first fit; `.append = true` keeps an existing
/// file's header and rows instead (a resumed run). Later fits with the same logger add rows.
///
/// A trainer built with a kiln::config has its effective configuration written beside the
/// table, to configuration_path() ("<path>.config.json"), when each fit begins: a line of
/// comment in the CSV itself would trip up the readers that expect the header first.
///
///   kiln::callbacks{kiln::csv_logger{.path = "run/metrics.csv"}}
///   // epoch,step,train/loss,val/loss,val/accuracy,lr/group_0,lr/group_1
///   // 0,250,0.412,0.298,0.9125,0.0002,0.002
struct csv_logger {
  std::filesystem::path path = "metrics.csv";  ///< missing directories are created
  bool append = false;                         ///< keep the rows of an existing file

  /// It writes files: in a distributed fit only the process of rank 0 runs it.
  static constexpr bool rank_zero_only = true;

  /// The options by name, for kiln::config: "callbacks.csv_logger.<option>".
  static constexpr std::string_view config_name = "csv_logger";
  template <class F>
  void each_option(F&& f) { f("path", path); f("append", append); }

  detail::csv_log_state state{};               ///< running state (not an option)

  /// Where the effective configuration is written: the CSV's path with ".config.json" added.
  [[nodiscard]] std::filesystem::path configuration_path() const { return std::filesystem::path{path} += ".config.json"; }

  KILN_DECL void on_fit_begin(context& ctx);

  void on_epoch_begin(context& ctx) { state.recorder.begin(ctx); }

  KILN_DECL void on_epoch_end(context& ctx);

 private:
  KILN_DECL void read_existing();

  KILN_DECL void write_configuration(const std::string& json) const;

  KILN_DECL void rewrite();
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void csv_logger::on_fit_begin(context& ctx) {
  if (!ctx.hyperparameters.empty()) write_configuration(ctx.hyperparameters);
  if (state.started) return;
  detail::prepare_log_file(path, "kiln::csv_logger");
  state.started = true;
  if (append) read_existing();
}

KILN_DECL void csv_logger::on_epoch_end(context& ctx) {
  if (!state.started) on_fit_begin(ctx);
  const auto row = state.recorder.take_row(ctx);
  const std::size_t known = state.columns.size();
  for (const auto& [name, value] : row.values) {
    if (std::find(state.columns.begin(), state.columns.end(), name) == state.columns.end()) {
      state.columns.push_back(name);
    }
  }
  std::string line = detail::concat(row.epoch, ',', row.step);
  for (const auto& column : state.columns) {
    line += ',';
    if (const double* value = row.find(column)) line += detail::format_number(*value);
  }
  if (state.file_written && state.columns.size() == known) {
    state.lines.push_back(line);
    detail::append_to_file(path, line + '\n', "kiln::csv_logger");
    return;
  }
  for (auto& earlier : state.lines) earlier.append(state.columns.size() - known, ',');
  state.lines.push_back(std::move(line));
  rewrite();
}

KILN_DECL void csv_logger::read_existing() {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) return;  // nothing to keep
  const auto header = detail::split_csv_line(line);
  if (header.size() < 2 || header[0] != "epoch" || header[1] != "step") {
    throw std::runtime_error(detail::concat(
        "kiln::csv_logger: '", path.string(), "' does not start with the header epoch,step,... of a "
        "kiln CSV log, so .append = true cannot continue it; name another path or leave .append false"));
  }
  state.columns.assign(header.begin() + 2, header.end());
  while (std::getline(in, line)) {
    if (!line.empty()) state.lines.push_back(line);
  }
  state.file_written = true;
}

KILN_DECL void csv_logger::write_configuration(const std::string& json) const {
  detail::prepare_log_file(path, "kiln::csv_logger");
  atomic_write(configuration_path(), [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << json << '\n';
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  });
}

KILN_DECL void csv_logger::rewrite() {
  atomic_write(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp);
    out << "epoch,step";
    for (const auto& column : state.columns) out << ',' << detail::csv_field(column);
    out << '\n';
    for (const auto& line : state.lines) out << line << '\n';
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  });
  state.file_written = true;
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
