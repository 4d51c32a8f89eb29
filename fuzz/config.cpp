// Fuzzes kiln::config (kiln/config/config.hpp): JSON text, and a command line split from the
// input, applied to options of every type an option may have. A configuration that applies
// must survive its own effective_json(): read back, it gives the same values and the same text.
#include "fuzz.hpp"

#include <kiln/config/config.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

enum class side { low, high };
constexpr std::array<std::pair<std::string_view, side>, 2> enum_names(side) noexcept {
  return {{{"low", side::low}, {"high", side::high}}};
}

struct inner {
  double scale = 1.0;
  std::vector<side> sides;
  template <class F>
  void each_option(F&& f) {
    f("scale", scale);
    f("sides", sides);
  }
  bool operator==(const inner&) const = default;
};

// One option of each kind kiln::config reads.
struct options {
  double lr = 0.1;
  float ratio = 0.5f;
  std::int64_t epochs = 3;
  int small = 1;
  std::uint8_t byte = 2;
  bool flag = false;
  std::string name = "run";
  std::filesystem::path dir = "out";
  side mode = side::low;
  std::vector<double> values{1.0};
  std::vector<std::int64_t> steps;
  inner nested;
  template <class F>
  void each_option(F&& f) {
    f("lr", lr), f("ratio", ratio), f("epochs", epochs), f("small", small), f("byte", byte), f("flag", flag);
    f("name", name), f("dir", dir), f("mode", mode), f("values", values), f("steps", steps), f("nested", nested);
  }
};

// Floating-point options compare by their bits: -0.0 must come back as -0.0.
bool same(const options& a, const options& b) {
  const auto bits = [](const std::vector<double>& v) {
    std::vector<std::uint64_t> out;
    for (const double x : v) out.push_back(std::bit_cast<std::uint64_t>(x));
    return out;
  };
  return std::bit_cast<std::uint64_t>(a.lr) == std::bit_cast<std::uint64_t>(b.lr) &&
         std::bit_cast<std::uint32_t>(a.ratio) == std::bit_cast<std::uint32_t>(b.ratio) && a.epochs == b.epochs &&
         a.small == b.small && a.byte == b.byte && a.flag == b.flag && a.name == b.name && a.dir == b.dir &&
         a.mode == b.mode && bits(a.values) == bits(b.values) && a.steps == b.steps &&
         std::bit_cast<std::uint64_t>(a.nested.scale) == std::bit_cast<std::uint64_t>(b.nested.scale) &&
         a.nested.sides == b.nested.sides;
}

// Applies `cfg` as a trainer would; the program's own key read first.
options applied(kiln::config& cfg) {
  options o;
  (void)cfg.value("data.batch_size", std::int64_t{64});
  cfg.apply("section", o);
  cfg.check_all_used();
  return o;
}

void round_trip(kiln::config& cfg, bool strings_are_utf8) {
  const options first = applied(cfg);
  const std::string effective = cfg.effective_json();
  kiln::config again = kiln::config::from_json(effective, "effective_json");
  const options second = applied(again);
  // Text from the command line need not be UTF-8; effective_json shows such bytes as U+FFFD.
  if (!strings_are_utf8) return;
  kiln::fuzz::require(same(first, second), "effective_json read back gives the same values");
  kiln::fuzz::require(again.effective_json() == effective, "effective_json read back gives the same text");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::fuzz::expect_clear_error("kiln::config", [&] {
    auto cfg = kiln::config::from_json(text, "fuzz input");
    round_trip(cfg, true);
  });

  // The same bytes as a command line, one argument per line. --help ends the process by design
  // and --config reads files: arguments that could mean either are left out.
  std::vector<std::string> arguments{"fuzz"};
  for (std::size_t begin = 0; begin <= text.size();) {
    const std::size_t end = std::min(text.find('\n', begin), text.size());
    const std::string_view argument = text.substr(begin, end - begin);
    const bool help_or_file = argument.starts_with('-') && (argument.find('h') != std::string_view::npos ||
                                                            argument.find("-c") != std::string_view::npos);
    if (!help_or_file) arguments.emplace_back(argument);
    begin = end + 1;
  }
  std::vector<const char*> argv;
  for (const auto& a : arguments) argv.push_back(a.c_str());
  kiln::fuzz::expect_clear_error("kiln::config", [&] {
    auto cfg = kiln::config::from_command_line(static_cast<int>(argv.size()), argv.data());
    round_trip(cfg, false);
  });
  return 0;
}
