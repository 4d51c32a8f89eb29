// kiln/callbacks/jsonl_logger.hpp — one JSON object per epoch, one per line (JSON Lines), for
// scripts: `pandas.read_json(path, lines=True)`, `jq`, or a line-by-line reader.
//
// Written with nlohmann/json, and so not included by kiln/kiln.hpp: include this header where
// the logger is used. The other loggers are listed in kiln/callbacks/csv_logger.hpp.
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/detail/linkage.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln {
namespace detail {

struct jsonl_log_state {
  epoch_recorder recorder;
  bool started = false;  ///< the first fit has begun
};

}  // namespace detail

/// Appends one line per epoch: `{"epoch":0,"step":250,"train/loss":0.412,...,"lr/group_0":0.0002}`
/// with the keys in the order ctx.metrics holds them, then the learning rates (see
/// csv_logger.hpp for what is logged). Each line is written whole and the file closed, so a
/// crashed run leaves one complete object per finished epoch. A value that is not finite is
/// written as null (JSON has no NaN); numbers read back exactly.
///
/// The first fit starts the file afresh; `.append = true` keeps an existing file's lines (a
/// resumed run). Later fits with the same logger add lines. A trainer built with a kiln::config
/// has its effective configuration written first, on a line of its own:
/// `{"hyperparameters":{"optimizer.lr":0.002,...}}`.
///
///   #include <kiln/callbacks/jsonl_logger.hpp>
///   kiln::callbacks{kiln::jsonl_logger{.path = "run/metrics.jsonl"}}
struct jsonl_logger {
  std::filesystem::path path = "metrics.jsonl";  ///< missing directories are created
  bool append = false;                           ///< keep the lines of an existing file

  /// It writes files: in a distributed fit only the process of rank 0 runs it.
  static constexpr bool rank_zero_only = true;

  /// The options by name, for kiln::config: "callbacks.jsonl_logger.<option>".
  static constexpr std::string_view config_name = "jsonl_logger";
  template <class F>
  void each_option(F&& f) { f("path", path); f("append", append); }

  detail::jsonl_log_state state{};               ///< running state (not an option)

  KILN_DECL void on_fit_begin(context& ctx);

  void on_epoch_begin(context& ctx) { state.recorder.begin(ctx); }

  KILN_DECL void on_epoch_end(context& ctx);
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void jsonl_logger::on_fit_begin(context& ctx) {
  if (state.started) return;
  detail::prepare_log_file(path, "kiln::jsonl_logger");
  if (!append) {
    std::ofstream truncate(path, std::ios::trunc);
    if (!truncate) throw std::runtime_error("kiln::jsonl_logger: cannot create '" + path.string() + "'");
  }
  state.started = true;
  if (!ctx.hyperparameters.empty()) {
    nlohmann::ordered_json record;
    auto& configuration = record["hyperparameters"];
    configuration = nlohmann::ordered_json::parse(ctx.hyperparameters, nullptr, /*allow_exceptions=*/false);
    if (configuration.is_discarded()) configuration = ctx.hyperparameters;  // not JSON: kept as text
    detail::append_to_file(path, record.dump() + '\n', "kiln::jsonl_logger");
  }
}

KILN_DECL void jsonl_logger::on_epoch_end(context& ctx) {
  if (!state.started) on_fit_begin(ctx);
  const auto row = state.recorder.take_row(ctx);
  nlohmann::ordered_json record;
  record["epoch"] = row.epoch;
  record["step"] = row.step;
  for (const auto& [name, value] : row.values) record[name] = value;
  detail::append_to_file(path, record.dump() + '\n', "kiln::jsonl_logger");
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
