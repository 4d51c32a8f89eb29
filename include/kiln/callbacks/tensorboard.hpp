// kiln/callbacks/tensorboard.hpp — TensorBoard event files: the losses, metrics and learning
// rates as scalars, the hyperparameters and each table of values (the confusion matrix) as text.
//
//   tensorboard --logdir runs        # then open the Scalars and Text tabs
//
// The file format, TensorFlow's record I/O: a sequence of records, each
//   uint64 length (little endian) | uint32 masked CRC-32C of those 8 bytes |
//   payload: a serialized tensorflow.Event | uint32 masked CRC-32C of the payload
// with masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8. The first record's Event holds
// file_version "brain.Event:2".
//
// The few protobuf fields are written by hand: a packaged protobuf runtime (libprotobuf) would
// need code generated from TensorFlow's .proto files, a build step and a library to link, all
// for six message types of which kiln writes a dozen fields. The field numbers, from
// tensorboard/compat/proto/{event,summary,tensor,tensor_shape,types}.proto:
//
//   Event           wall_time 1 (double), step 2 (int64), file_version 3 (string),
//                   summary 5 (Summary)
//   Summary         value 1 (repeated Value)
//   Summary.Value   tag 1 (string), simple_value 2 (float), tensor 8 (TensorProto),
//                   metadata 9 (SummaryMetadata)
//   SummaryMetadata plugin_data 1 (PluginData{plugin_name 1 (string), content 2 (bytes)})
//   TensorProto     dtype 1 (enum DataType: DT_STRING = 7), tensor_shape 2 (TensorShapeProto),
//                   string_val 8 (repeated bytes)
//   TensorShapeProto dim 2 (repeated Dim{size 1 (int64)})
//
// A text summary is what torch.utils.tensorboard's add_text writes: plugin "text", a DT_STRING
// tensor of shape [1] holding Markdown. CRC-32C is Boost.CRC's (Boost is already a dependency).
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/hyperparameters.hpp>
#include <kiln/detail/linkage.hpp>

#include <boost/crc.hpp>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace kiln {
namespace detail {

/// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF).
KILN_DECL std::uint32_t crc32c(std::string_view bytes);

/// The CRC as TensorFlow's record files store it: rotated and offset, so that the CRC of data
/// that holds CRCs is not degenerate.
inline std::uint32_t masked_crc32c(std::string_view bytes) {
  const std::uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace protobuf {

enum wire_type : std::uint32_t { varint_wire = 0, fixed64_wire = 1, length_delimited_wire = 2, fixed32_wire = 5 };

inline void put_varint(std::string& out, std::uint64_t value) {
  for (; value >= 0x80; value >>= 7) out += static_cast<char>((value & 0x7f) | 0x80);
  out += static_cast<char>(value);
}

inline void put_little_endian(std::string& out, std::uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
}

inline void put_key(std::string& out, std::uint32_t field, wire_type type) { put_varint(out, (field << 3) | type); }

inline void put_double(std::string& out, std::uint32_t field, double value) {
  put_key(out, field, fixed64_wire);
  put_little_endian(out, std::bit_cast<std::uint64_t>(value), 8);
}

inline void put_float(std::string& out, std::uint32_t field, float value) {
  put_key(out, field, fixed32_wire);
  put_little_endian(out, std::bit_cast<std::uint32_t>(value), 4);
}

inline void put_int64(std::string& out, std::uint32_t field, std::int64_t value) {
  put_key(out, field, varint_wire);
  put_varint(out, static_cast<std::uint64_t>(value));  // int64 negatives take ten bytes, as protobuf's
}

/// A string, bytes, or an embedded message already serialized.
KILN_DECL void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes);

}  // namespace protobuf

namespace tensorboard_event {

/// Summary.Value{tag, simple_value}: one point of a scalar chart.
KILN_DECL std::string scalar_value(std::string_view tag, double value);

/// Summary.Value{tag, tensor: DT_STRING [1] {markdown}, metadata: plugin "text"}.
KILN_DECL std::string text_value(std::string_view tag, std::string_view markdown);

/// Event{wall_time, step, summary: Summary{value...}}; `values` are serialized Summary.Values.
KILN_DECL std::string summary(double wall_time, std::int64_t step, const std::vector<std::string>& values);

/// Event{wall_time, step 0, file_version "brain.Event:2"}: the first record of every file.
KILN_DECL std::string file_version(double wall_time);

/// One record of the file: the payload framed by its length and both masked CRCs.
KILN_DECL std::string record(std::string_view payload);

inline double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace tensorboard_event

/// A Markdown table, the form TensorBoard's Text tab renders: `|` in a cell is escaped.
KILN_DECL std::string markdown_table(const std::vector<std::vector<std::string>>& rows);

/// A table of values as Markdown; a confusion matrix gets its rows and columns named.
KILN_DECL std::string markdown_table(const value_table& table);

struct tensorboard_state {
  epoch_recorder recorder;
  std::filesystem::path file;  ///< the event file, once the first fit has begun
};

}  // namespace detail

/// Writes an event file `events.out.tfevents.<unix time>.<hostname>` in `log_dir` (a suffix
/// .1, .2, ... when that name is taken) that TensorBoard reads. At each epoch's end one event at
/// step ctx.step holds a scalar per value the other loggers write (see csv_logger.hpp), except
/// table cells such as "val/confusion_matrix[3,5]": each table is logged whole instead, as a
/// Markdown table under its own name in the Text tab. The hyperparameters, when given, and the
/// effective configuration of a trainer built with a kiln::config (context::hyperparameters),
/// are one table, a text summary "hyperparameters" at the start. Each epoch's record is appended and the file
/// closed; TensorBoard reads a file that a crashed run cut short up to its last whole record.
///
///   kiln::callbacks{kiln::tensorboard_logger{
///       .log_dir = "runs/finetune", .hyperparameters = {{"lr", "0.002"}, {"optimizer", "adamw"}}}}
struct tensorboard_logger {
  std::filesystem::path log_dir = "runs";  ///< created when missing
  std::vector<std::pair<std::string, std::string>> hyperparameters;  ///< name, value

  /// It writes files: in a distributed fit only the process of rank 0 runs it.
  static constexpr bool rank_zero_only = true;

  /// The options by name, for kiln::config: "callbacks.tensorboard_logger.<option>".
  static constexpr std::string_view config_name = "tensorboard_logger";
  template <class F>
  void each_option(F&& f) { f("log_dir", log_dir); }

  detail::tensorboard_state state{};  ///< running state (not an option)

  /// The event file written, or an empty path before the first fit.
  [[nodiscard]] const std::filesystem::path& event_file() const noexcept { return state.file; }

  KILN_DECL void on_fit_begin(context& ctx);

  void on_epoch_begin(context& ctx) { state.recorder.begin(ctx); }

  KILN_DECL void on_epoch_end(context& ctx);

 private:
  // Created exclusively ("x"): two runs started in the same second, or two processes of one
  // distributed run, each get a file of their own.
  [[nodiscard]] KILN_DECL std::filesystem::path create_event_file(long long unix_time) const;
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::uint32_t crc32c(std::string_view bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

}  // namespace kiln::detail

namespace kiln::detail::protobuf {

KILN_DECL void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_key(out, field, length_delimited_wire);
  put_varint(out, bytes.size());
  out += bytes;
}

}  // namespace kiln::detail::protobuf

namespace kiln::detail::tensorboard_event {

KILN_DECL std::string scalar_value(std::string_view tag, double value) {
  std::string out;
  protobuf::put_bytes(out, 1, tag);
  protobuf::put_float(out, 2, static_cast<float>(value));  // TensorBoard's scalars are float32
  return out;
}

KILN_DECL std::string text_value(std::string_view tag, std::string_view markdown) {
  std::string dim, shape, tensor, plugin_data, metadata, out;
  protobuf::put_int64(dim, 1, 1);               // Dim.size
  protobuf::put_bytes(shape, 2, dim);           // TensorShapeProto.dim
  protobuf::put_int64(tensor, 1, 7);            // TensorProto.dtype = DT_STRING
  protobuf::put_bytes(tensor, 2, shape);        // TensorProto.tensor_shape
  protobuf::put_bytes(tensor, 8, markdown);     // TensorProto.string_val
  protobuf::put_bytes(plugin_data, 1, "text");  // PluginData.plugin_name
  protobuf::put_bytes(metadata, 1, plugin_data);  // SummaryMetadata.plugin_data
  protobuf::put_bytes(out, 1, tag);
  protobuf::put_bytes(out, 8, tensor);
  protobuf::put_bytes(out, 9, metadata);
  return out;
}

KILN_DECL std::string summary(double wall_time, std::int64_t step, const std::vector<std::string>& values) {
  std::string summary, out;
  for (const auto& value : values) protobuf::put_bytes(summary, 1, value);
  protobuf::put_double(out, 1, wall_time);
  protobuf::put_int64(out, 2, step);
  protobuf::put_bytes(out, 5, summary);
  return out;
}

KILN_DECL std::string file_version(double wall_time) {
  std::string out;
  protobuf::put_double(out, 1, wall_time);
  protobuf::put_int64(out, 2, 0);
  protobuf::put_bytes(out, 3, "brain.Event:2");
  return out;
}

KILN_DECL std::string record(std::string_view payload) {
  std::string length, out;
  protobuf::put_little_endian(length, payload.size(), 8);
  out += length;
  protobuf::put_little_endian(out, masked_crc32c(length), 4);
  out += payload;
  protobuf::put_little_endian(out, masked_crc32c(payload), 4);
  return out;
}

}  // namespace kiln::detail::tensorboard_event

namespace kiln::detail {

KILN_DECL std::string markdown_table(const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    out += '|';
    for (const auto& cell : rows[r]) {
      out += ' ';
      for (const char c : cell) out += c == '|' ? std::string{"\\|"} : std::string(1, c);
      out += " |";
    }
    out += '\n';
    if (r == 0) {
      out += '|';
      for (std::size_t c = 0; c < rows[0].size(); ++c) out += " --- |";
      out += '\n';
    }
  }
  return out;
}

KILN_DECL std::string markdown_table(const value_table& table) {
  std::vector<std::vector<std::string>> rows(1);
  rows[0].emplace_back(table.name.ends_with("confusion_matrix") ? "true \\ predicted" : "");
  for (std::int64_t c = 0; c < table.columns; ++c) rows[0].push_back(std::to_string(c));
  for (std::int64_t r = 0; r < table.rows; ++r) {
    auto& row = rows.emplace_back();
    row.push_back(std::to_string(r));
    for (std::int64_t c = 0; c < table.columns; ++c) row.push_back(format_number(table.at(r, c)));
  }
  return markdown_table(rows);
}

}  // namespace kiln::detail

namespace kiln {

KILN_DECL void tensorboard_logger::on_fit_begin(context& ctx) {
  if (!state.file.empty()) return;  // later fits go on in the same file
  detail::check_option(!log_dir.empty(), "kiln::tensorboard_logger", "log_dir", "a directory", "\"\"");
  detail::create_directories(log_dir, "kiln::tensorboard_logger");
  const double wall_time = detail::tensorboard_event::now();
  state.file = create_event_file(static_cast<long long>(wall_time));
  std::string records = detail::tensorboard_event::record(detail::tensorboard_event::file_version(wall_time));
  std::vector<std::vector<std::string>> rows{{"hyperparameter", "value"}};
  for (const auto& [name, value] : hyperparameters) rows.push_back({name, value});
  for (auto& [name, value] : detail::configuration_rows(ctx.hyperparameters)) rows.push_back({name, value});
  if (rows.size() > 1) {
    const auto text = detail::tensorboard_event::text_value("hyperparameters", detail::markdown_table(rows));
    records += detail::tensorboard_event::record(detail::tensorboard_event::summary(wall_time, ctx.step, {text}));
  }
  detail::append_to_file(state.file, records, "kiln::tensorboard_logger");
}

KILN_DECL void tensorboard_logger::on_epoch_end(context& ctx) {
  if (state.file.empty()) on_fit_begin(ctx);
  const auto row = state.recorder.take_row(ctx);
  std::vector<std::string> values;
  for (const auto& [name, value] : row.values) {
    if (!detail::parse_table_cell(name)) values.push_back(detail::tensorboard_event::scalar_value(name, value));
  }
  for (const auto& table : detail::tables_in(row.values)) {
    values.push_back(detail::tensorboard_event::text_value(table.name, detail::markdown_table(table)));
  }
  const auto event = detail::tensorboard_event::summary(detail::tensorboard_event::now(), row.step, values);
  detail::append_to_file(state.file, detail::tensorboard_event::record(event), "kiln::tensorboard_logger");
}

KILN_DECL std::filesystem::path tensorboard_logger::create_event_file(long long unix_time) const {
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  const std::string base = detail::concat("events.out.tfevents.", unix_time, '.', host);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto file = log_dir / (attempt == 0 ? base : detail::concat(base, '.', attempt));
    if (std::FILE* created = std::fopen(file.c_str(), "wbx")) {
      std::fclose(created);
      return file;
    }
    if (errno != EEXIST) break;
  }
  throw std::runtime_error(detail::concat("kiln::tensorboard_logger: cannot create an event file in '",
                                          log_dir.string(), "': ", std::strerror(errno)));
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
