// kiln/callbacks/html_report.hpp — one self-contained HTML page per run, for a person to look
// at: the hyperparameters, the last epoch's values, a chart per family of curves, and the
// validation confusion matrix as a heatmap.
//
// The page is plain HTML with inline CSS and inline SVG: no script, no font, no file beside it,
// so it opens the same from a laptop, a CI artifact or an e-mail. The other loggers are listed
// in kiln/callbacks/csv_logger.hpp.
#pragma once

#include <kiln/callbacks/epoch_log.hpp>
#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/hyperparameters.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/io/atomic_file.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {
namespace detail::html {

KILN_DECL std::string escape(std::string_view text);

/// A coordinate with one decimal: enough for a screen, and short.
KILN_DECL std::string px(double value);

/// A value as a person reads it on an axis or in a table: four significant digits.
KILN_DECL std::string readable(double value);

/// About `target` round ticks (1, 2 or 5 times a power of ten apart) covering [low, high].
KILN_DECL std::vector<double> nice_ticks(double low, double high, int target);

/// One curve: (x, y) points; a NaN y breaks the line.
struct series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

/// A chart of the curves of one family: "loss" holds train/loss and val/loss.
struct chart {
  std::string title;
  std::vector<series> curves;
  std::string note;
};

// A palette that stays apart for the colour-blind (Okabe & Ito).
inline constexpr std::string_view colours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                               "#E69F00", "#56B4E9", "#000000", "#F0E442"};

/// The family a value's curve is drawn in: "train/accuracy" and "val/accuracy" go together
/// under "accuracy"; every "lr/..." under "learning rate".
KILN_DECL std::string family_of(std::string_view name);

/// A line chart with axes, ticks, grid lines, axis labels and a legend. The y axis is
/// logarithmic when every value is positive and they span a factor of ten or more (learning
/// rates that decay do).
KILN_DECL std::string line_chart(const chart& c, std::string_view x_label);

/// A table of values as a heatmap: each cell shaded by its value relative to the table's
/// largest, its value written in it. A confusion matrix's axes are named.
KILN_DECL std::string heatmap(const value_table& table);

inline constexpr std::string_view style = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #111;
       margin: 24px auto; max-width: 1140px; padding: 0 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta { color: #555; margin: 0; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 3px 14px 3px 0; border-bottom: 1px solid #eee; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 16px; }
figure { margin: 0; }
figcaption { font-size: 14px; font-weight: 600; margin-bottom: 2px; }
figcaption span { font-weight: normal; color: #555; }
)";

/// The whole page. It is well-formed XML as well as HTML (self-closed empty elements, XML's
/// entities only), so that any XML parser can check it.
KILN_DECL std::string page(std::string_view title,
                           const std::vector<std::pair<std::string, std::string>>& hyperparameters,
                           const std::vector<epoch_row>& rows, std::string_view status);

struct html_report_state {
  epoch_recorder recorder;
  std::vector<epoch_row> rows;
};

}  // namespace detail::html

/// Writes a self-contained HTML report of the run to `path`: the hyperparameters (those given
/// here, then the effective configuration of a trainer built with a kiln::config); the last
/// epoch's values with their minimum and maximum; a line chart per family of values — the
/// losses "train/loss" and "val/loss" together, "train/x" with "val/x" for each metric x, the
/// learning rates of all groups together (log scale when they span a decade) — over epochs; and
/// a heatmap with counts for each table of values from the last epoch.
///
/// The confusion matrix (and any other table): a value named `<table>[i,j]` in ctx.metrics is
/// cell (i, j) of `<table>`. kiln::confusion_matrix reports "val/confusion_matrix[t,p]" (row: true
/// class, column: predicted), so `kiln::metrics<kiln::confusion_matrix>` is all it takes; any
/// callback listed before the report can put cells of its own into ctx.metrics the same way.
///
/// The report is rewritten atomically at the end of every epoch (so a crashed run still has
/// one, up to its last finished epoch) and at the end of the fit.
///
///   kiln::callbacks{kiln::html_report{.path = "run/report.html", .title = "MNIST 5-9",
///                                     .hyperparameters = {{"lr", "0.002"}, {"epochs", "5"}}}}
struct html_report {
  std::filesystem::path path = "report.html";  ///< missing directories are created
  std::string title = "kiln training report";
  std::vector<std::pair<std::string, std::string>> hyperparameters;  ///< name, value

  /// It writes files: in a distributed fit only the process of rank 0 runs it.
  static constexpr bool rank_zero_only = true;

  /// The options by name, for kiln::config: "callbacks.html_report.<option>".
  static constexpr std::string_view config_name = "html_report";
  template <class F>
  void each_option(F&& f) { f("path", path); f("title", title); }

  detail::html::html_report_state state{};  ///< running state (not an option)

  void on_fit_begin(context&) {
    detail::prepare_log_file(path, "kiln::html_report");
  }

  void on_epoch_begin(context& ctx) { state.recorder.begin(ctx); }

  KILN_DECL void on_epoch_end(context& ctx);

  void on_fit_end(context& ctx) {
    write(ctx, detail::concat("Finished: ", state.rows.size(), state.rows.size() == 1 ? " epoch, " : " epochs, ",
                         ctx.step, " optimizer steps. Written ", now(), "."));
  }

 private:
  KILN_DECL void write(const context& ctx, const std::string& status) const;

  KILN_DECL static std::string now();
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail::html {

KILN_DECL std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

KILN_DECL std::string px(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

KILN_DECL std::string readable(double value) {
  if (!std::isfinite(value)) return format_number(value);
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

KILN_DECL std::vector<double> nice_ticks(double low, double high, int target) {
  const double raw = (high - low) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
  std::vector<double> ticks;
  const double first = std::floor(low / step + 1e-9), last = std::ceil(high / step - 1e-9);
  for (double i = first; i <= last; ++i) ticks.push_back(i * step + 0.0);  // + 0.0: no "-0"
  return ticks;
}

KILN_DECL std::string family_of(std::string_view name) {
  if (name.starts_with("lr/")) return "learning rate";
  const auto slash = name.find('/');
  if (slash != std::string_view::npos) {
    const auto stage = name.substr(0, slash);
    if (stage == "train" || stage == "val" || stage == "test") return std::string{name.substr(slash + 1)};
  }
  return std::string{name};
}

KILN_DECL std::string line_chart(const chart& c, std::string_view x_label) {
  constexpr double width = 540, height = 320, left = 70, right = 16, top = 44, bottom = 48;
  constexpr double plot_w = width - left - right, plot_h = height - top - bottom;
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low;
  double y_low = x_low, y_high = -x_low;
  for (const auto& curve : c.curves) {
    for (const auto& [x, y] : curve.points) {
      x_low = std::min(x_low, x), x_high = std::max(x_high, x);
      if (std::isfinite(y)) y_low = std::min(y_low, y), y_high = std::max(y_high, y);
    }
  }
  if (!std::isfinite(y_low)) y_low = 0, y_high = 1;  // nothing finite to draw
  const bool log_scale = y_low > 0 && y_high / y_low >= 10;
  std::vector<double> y_ticks;
  if (log_scale) {
    for (double e = std::floor(std::log10(y_low)); e <= std::ceil(std::log10(y_high)); ++e) {
      y_ticks.push_back(std::pow(10.0, e));
    }
  } else {
    if (y_high - y_low < 1e-12 * std::max(1.0, std::abs(y_high))) {
      const double pad = y_high == 0 ? 1 : std::abs(y_high) * 0.1;
      y_low -= pad, y_high += pad;
    }
    y_ticks = nice_ticks(y_low, y_high, 5);
  }
  const auto y_of = [&](double y) {
    const double low = y_ticks.front(), high = y_ticks.back();
    const double t = log_scale ? (std::log10(y) - std::log10(low)) / (std::log10(high) - std::log10(low))
                               : (y - low) / (high - low);
    return top + plot_h * (1 - t);
  };
  if (x_high - x_low < 1) x_low -= 0.5, x_high += 0.5;  // one epoch: a point in the middle
  const auto x_of = [&](double x) { return left + plot_w * (x - x_low) / (x_high - x_low); };
  std::vector<double> x_ticks;
  for (double x : nice_ticks(x_low, x_high, 8)) {
    if (x >= x_low - 1e-9 && x <= x_high + 1e-9 && x == std::round(x)) x_ticks.push_back(x);
  }

  std::string svg = concat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height,
                           "\" viewBox=\"0 0 ", width, ' ', height, "\" role=\"img\" aria-label=\"",
                           escape(c.title), "\">\n");
  // Legend, above the plot.
  double legend_x = left;
  for (std::size_t i = 0; i < c.curves.size(); ++i) {
    const auto colour = colours[i % std::size(colours)];
    svg += concat("<line x1=\"", px(legend_x), "\" y1=\"18\" x2=\"", px(legend_x + 22), "\" y2=\"18\" stroke=\"",
                  colour, "\" stroke-width=\"2.5\"/><text x=\"", px(legend_x + 27), "\" y=\"22\" font-size=\"12\">",
                  escape(c.curves[i].name), "</text>\n");
    legend_x += 40 + 7.0 * static_cast<double>(c.curves[i].name.size());
  }
  // Grid, ticks and their labels.
  for (const double y : y_ticks) {
    const auto at = px(y_of(y));
    svg += concat("<line x1=\"", left, "\" y1=\"", at, "\" x2=\"", left + plot_w, "\" y2=\"", at,
                  "\" stroke=\"#e4e4e4\"/><text x=\"", left - 6, "\" y=\"", at,
                  "\" font-size=\"11\" text-anchor=\"end\" dominant-baseline=\"middle\">", readable(y), "</text>\n");
  }
  for (const double x : x_ticks) {
    const auto at = px(x_of(x));
    svg += concat("<line x1=\"", at, "\" y1=\"", top + plot_h, "\" x2=\"", at, "\" y2=\"", top + plot_h + 5,
                  "\" stroke=\"#333\"/><text x=\"", at, "\" y=\"", top + plot_h + 18,
                  "\" font-size=\"11\" text-anchor=\"middle\">", readable(x), "</text>\n");
  }
  // Axes and their labels.
  svg += concat("<path d=\"M", left, ' ', top, " V", top + plot_h, " H", left + plot_w,
                "\" fill=\"none\" stroke=\"#333\"/>\n", "<text x=\"", left + plot_w / 2, "\" y=\"", height - 8,
                "\" font-size=\"12\" text-anchor=\"middle\">", escape(x_label), "</text>\n",
                "<text transform=\"translate(16 ", top + plot_h / 2, ") rotate(-90)\" font-size=\"12\" "
                "text-anchor=\"middle\">", escape(c.title), log_scale ? " (log scale)" : "", "</text>\n");
  // The curves: a polyline per unbroken run of finite values, and a dot per point.
  for (std::size_t i = 0; i < c.curves.size(); ++i) {
    const auto colour = colours[i % std::size(colours)];
    std::string run;
    const auto flush = [&] {
      if (!run.empty()) {
        svg += concat("<polyline fill=\"none\" stroke=\"", colour, "\" stroke-width=\"2\" points=\"", run, "\"/>\n");
      }
      run.clear();
    };
    for (const auto& [x, y] : c.curves[i].points) {
      if (!std::isfinite(y) || (log_scale && y <= 0)) {
        flush();
        continue;
      }
      run += concat(run.empty() ? "" : " ", px(x_of(x)), ',', px(y_of(y)));
    }
    flush();
    if (c.curves[i].points.size() <= 60) {
      for (const auto& [x, y] : c.curves[i].points) {
        if (!std::isfinite(y) || (log_scale && y <= 0)) continue;
        svg += concat("<circle cx=\"", px(x_of(x)), "\" cy=\"", px(y_of(y)), "\" r=\"3\" fill=\"", colour,
                      "\"><title>", escape(c.curves[i].name), ' ', escape(x_label), ' ', readable(x), ": ",
                      format_number(y), "</title></circle>\n");
      }
    }
  }
  return svg += "</svg>\n";
}

KILN_DECL std::string heatmap(const value_table& table) {
  const bool confusion = table.name.ends_with("confusion_matrix");
  const double cell = std::clamp(440.0 / static_cast<double>(std::max(table.rows, table.columns)), 18.0, 56.0);
  const double font = std::clamp(cell * 0.3, 8.0, 14.0);
  constexpr double left = 64, top = 56;
  const double width = left + cell * static_cast<double>(table.columns) + 12;
  const double height = top + cell * static_cast<double>(table.rows) + 12;
  double largest = 0;
  for (const double v : table.cells) {
    if (std::isfinite(v)) largest = std::max(largest, std::abs(v));
  }
  std::string svg = concat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", px(width), "\" height=\"", px(height),
                           "\" viewBox=\"0 0 ", px(width), ' ', px(height), "\" role=\"img\" aria-label=\"",
                           escape(table.name), "\">\n");
  svg += concat("<text x=\"", px(left + cell * static_cast<double>(table.columns) / 2), "\" y=\"16\" font-size=\"12\" "
                "text-anchor=\"middle\">", confusion ? "predicted class" : "column", "</text>\n",
                "<text transform=\"translate(16 ", px(top + cell * static_cast<double>(table.rows) / 2),
                ") rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">", confusion ? "true class" : "row",
                "</text>\n");
  for (std::int64_t c = 0; c < table.columns; ++c) {
    svg += concat("<text x=\"", px(left + cell * (static_cast<double>(c) + 0.5)), "\" y=\"", top - 8,
                  "\" font-size=\"11\" text-anchor=\"middle\">", c, "</text>\n");
  }
  for (std::int64_t r = 0; r < table.rows; ++r) {
    const double y = top + cell * static_cast<double>(r);
    svg += concat("<text x=\"", left - 8, "\" y=\"", px(y + cell / 2),
                  "\" font-size=\"11\" text-anchor=\"end\" dominant-baseline=\"middle\">", r, "</text>\n");
    for (std::int64_t c = 0; c < table.columns; ++c) {
      const double v = table.at(r, c);
      const double t = std::isfinite(v) && largest > 0 ? std::abs(v) / largest : 0;
      // From near-white to deep blue; light text on the dark half.
      const auto channel = [t](double from, double to) { return static_cast<int>(std::lround(from + (to - from) * t)); };
      const double x = left + cell * static_cast<double>(c);
      svg += concat("<rect x=\"", px(x), "\" y=\"", px(y), "\" width=\"", px(cell), "\" height=\"", px(cell),
                    "\" fill=\"rgb(", channel(247, 8), ',', channel(251, 48), ',', channel(255, 107),
                    ")\" stroke=\"#fff\"><title>", confusion ? "true " : "row ", r,
                    confusion ? ", predicted " : ", column ", c, ": ", format_number(v), "</title></rect>\n",
                    "<text x=\"", px(x + cell / 2), "\" y=\"", px(y + cell / 2), "\" font-size=\"", px(font),
                    "\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"", t > 0.5 ? "#fff" : "#111",
                    "\">", std::isfinite(v) ? readable(v) : "", "</text>\n");
    }
  }
  return svg += "</svg>\n";
}

KILN_DECL std::string page(std::string_view title,
                           const std::vector<std::pair<std::string, std::string>>& hyperparameters,
                           const std::vector<epoch_row>& rows, std::string_view status) {
  std::string out = concat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>",
                           escape(title), "</title>\n<style>", style, "</style>\n</head>\n<body>\n<h1>", escape(title),
                           "</h1>\n<p class=\"meta\">", escape(status), "</p>\n");
  if (!hyperparameters.empty()) {
    out += "<h2>Hyperparameters</h2>\n<table>\n";
    for (const auto& [name, value] : hyperparameters) {
      out += concat("<tr><th>", escape(name), "</th><td>", escape(value), "</td></tr>\n");
    }
    out += "</table>\n";
  }
  if (rows.empty()) return out += "<p>No epoch has finished yet.</p>\n</body>\n</html>\n";

  // The x of each row: its epoch, or its place in the report when epochs restart (a second fit).
  bool epochs_increase = true;
  for (std::size_t i = 1; i < rows.size(); ++i) epochs_increase = epochs_increase && rows[i].epoch > rows[i - 1].epoch;
  const auto x_of = [&](std::size_t i) { return static_cast<double>(epochs_increase ? rows[i].epoch : std::int64_t(i)); };

  // Scalars (not table cells), in the order first seen; each in its family's chart.
  std::vector<chart> charts;
  std::vector<std::string> names;
  for (const auto& row : rows) {
    for (const auto& [name, value] : row.values) {
      if (parse_table_cell(name) || std::find(names.begin(), names.end(), name) != names.end()) continue;
      names.push_back(name);
      const auto family = family_of(name);
      auto it = std::find_if(charts.begin(), charts.end(), [&](const chart& c) { return c.title == family; });
      if (it == charts.end()) it = charts.insert(charts.end(), chart{.title = family, .curves = {}, .note = {}});
      it->curves.push_back({.name = name, .points = {}});
    }
  }
  for (auto& c : charts) {
    for (auto& curve : c.curves) {
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const double* value = rows[i].find(curve.name);
        curve.points.emplace_back(x_of(i), value ? *value : std::numeric_limits<double>::quiet_NaN());
      }
    }
    if (c.title == "learning rate") c.note = "group 0: backbone, group 1: head";
  }

  const auto& last = rows.back();
  out += concat("<h2>Last epoch: ", last.epoch, " <small>(step ", last.step, ")</small></h2>\n<table>\n"
                "<tr><th>value</th><th>last</th><th>min</th><th>max</th></tr>\n");
  for (const auto& name : names) {
    double low = std::numeric_limits<double>::infinity(), high = -low;
    for (const auto& row : rows) {
      if (const double* v = row.find(name); v && std::isfinite(*v)) low = std::min(low, *v), high = std::max(high, *v);
    }
    const double* v = last.find(name);
    out += concat("<tr><th>", escape(name), "</th><td class=\"number\">", v ? readable(*v) : "", "</td><td class=\"number\">",
                  std::isfinite(low) ? readable(low) : "", "</td><td class=\"number\">", std::isfinite(high) ? readable(high) : "",
                  "</td></tr>\n");
  }
  out += "</table>\n<h2>Training curves</h2>\n<div class=\"charts\">\n";
  const std::string_view x_label = epochs_increase ? "epoch" : "epoch (over all fits)";
  for (const auto& c : charts) {
    out += concat("<figure><figcaption>", escape(c.title), c.note.empty() ? "" : " <span>(", escape(c.note),
                  c.note.empty() ? "" : ")</span>", "</figcaption>\n", line_chart(c, x_label), "</figure>\n");
  }
  out += "</div>\n";
  for (const auto& table : tables_in(last.values)) {
    const bool confusion = table.name.ends_with("confusion_matrix");
    out += concat("<h2>", confusion && table.name.starts_with("val/") ? "Validation confusion matrix" : escape(table.name),
                  " <small>(", escape(table.name), ", epoch ", last.epoch, ")</small></h2>\n<figure>", heatmap(table),
                  "</figure>\n");
  }
  return out += "</body>\n</html>\n";
}

}  // namespace kiln::detail::html

namespace kiln {

KILN_DECL void html_report::on_epoch_end(context& ctx) {
  state.rows.push_back(state.recorder.take_row(ctx));
  write(ctx, detail::concat("Epoch ", ctx.epoch + 1, " of ", ctx.max_epochs, " done; ", ctx.step,
                       " optimizer steps. Written ", now(), "."));
}

KILN_DECL void html_report::write(const context& ctx, const std::string& status) const {
  auto rows = hyperparameters;
  for (auto& row : detail::configuration_rows(ctx.hyperparameters)) rows.push_back(std::move(row));
  const auto html = detail::html::page(title, rows, state.rows, status);
  atomic_write(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << html;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  });
}

KILN_DECL std::string html_report::now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
