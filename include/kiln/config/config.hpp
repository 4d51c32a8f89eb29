// kiln/config/config.hpp — a pipeline's runtime numbers from the command line and JSON files,
// without recompiling; the effective configuration saved with every log and checkpoint.
//
//   int main(int argc, char** argv) {
//     auto cfg = kiln::config::from_command_line(argc, argv);
//     const auto batch_size = cfg.value("data.batch_size", std::int64_t{64});  // your own keys first
//     kiln::trainer t{cfg, kiln::backbone<Net>{}, kiln::adamw{.lr = 3e-4}, kiln::step_lr{.gamma = 0.5}};
//     t.fit(train, val, {.epochs = 10});
//   }
//
//   $ prog --config run.json --set optimizer.lr=1e-3 --set fit.epochs=20
//
// Keys. A key is a dotted path, "section.name". A trainer built with a config reads
//   backbone.*  loss.*  optimizer.*  scheduler.*  fit.*  callbacks.<config_name>.*
// — every option that the policy in that role lists in its `each_option` (warmup<S> nests S's
// as scheduler.then.*; a callback type listed twice gets callbacks.<name>_2.* for the second) —
// and the program reads its own keys with value(). Values written in the code are the defaults.
//
// Sources, weakest first: the code; each --config file, in order; each --set, in order. Files
// are JSON objects in which nested objects and dotted names are the same key ({"optimizer":
// {"lr": 0.01}} is {"optimizer.lr": 0.01}); // and /* */ comments are allowed.
//
// Types are checked, never guessed. In JSON: a number for a floating-point option ("inf" and
// "-inf" as strings: JSON has none), an integer for an integer option (3.5 and 3.0 are not
// integers), true/false, a string for text, paths and enums (the allowed names are listed in
// the error), an array for a list. From --set, the text is parsed the same way by the
// option's type: "1e-3", "3", "true", "max", and a list as "30,80" or "[30,80]".
//
// Errors throw kiln::config_error (an std::invalid_argument) that says what was wrong, where
// it came from and what to write instead. A key that nothing reads is an error too — the
// trainer calls check_all_used() once it has applied its sections, so read your own keys with
// value() before building the trainer:
//   kiln::config: unknown key 'optimizer.learning_rate' (from --set); did you mean 'optimizer.lr'?
//
// The effective configuration, effective_json(), is every option of every applied policy and
// every key read with value(), with the value in force (defaults included), as a flat JSON
// object with one "dotted.key": value per line:
//   {
//     "data.batch_size": 64,
//     "optimizer.lr": 0.001,
//     "scheduler.interval": "epoch"
//   }
// Fed back with --config it gives the same values. The trainer stores it in
// context::hyperparameters, which the loggers and checkpoints save.
//
// Compile time: including this header costs about 2 s of CPU (g++ 12; nlohmann/json most of it),
// and a trainer built with a config about 5 s more to instantiate, so kiln/kiln.hpp does not
// include it: include it in the file that has main().
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln {

// Declared in kiln/callbacks/callbacks.hpp; only a template below uses it, so that this header
// needs no LibTorch (fuzz/config.cpp builds without it).
template <class... Cs>
class callbacks;

/// What kiln::config throws: a file that cannot be read or parsed, a value of the wrong type, an
/// unknown key, a bad command line. The message names the key, where it came from, and the fix.
class config_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail::configuration {

// Stands for any visitor in the Configurable concept below.
struct any_visitor {
  template <class T>
  void operator()(std::string_view, T&) const {}
};

}  // namespace detail::configuration

/// A type whose runtime options kiln::config can set: it lists them, by name, with
///   template <class F> void each_option(F&& f) { f("lr", lr); f("momentum", momentum); }
/// Each option is a bool, an integer, a floating-point number, std::string,
/// std::filesystem::path, an enum with an `enum_names(E)` function found by argument-dependent
/// lookup (returning pairs of name and value), an std::vector of those, or a Configurable
/// type itself (its options nest under the name). A callback adds
///   static constexpr std::string_view config_name = "my_logger";
/// to have a trainer apply "callbacks.my_logger.*" to it.
template <class P>
concept Configurable = requires(P& p) { p.each_option(detail::configuration::any_visitor{}); };

/// The command line that kiln::config::from_command_line accepts besides --config and --set.
///   {.description = "Fine-tunes a CNN on MNIST digits 5-9.", .positional = {"data-dir", "output-dir"}}
struct command_line_options {
  std::string description;              ///< the first line of --help
  std::vector<std::string> positional;  ///< names of optional positional arguments, in order
};

namespace detail::configuration {

using json = nlohmann::ordered_json;

/// Where a value came from, for messages: its key and its origin ("--set", "file 'run.json'").
struct source {
  std::string_view key;
  std::string_view origin;
};

[[noreturn]] inline void wrong_value(const source& at, std::string_view expected, std::string_view got) {
  throw config_error(concat("kiln::config: ", at.key, " (from ", at.origin, ") must be ", expected, ", got ", got));
}

inline std::string quoted(std::string_view text) { return concat('\'', text, '\''); }

/// JSON text of a value; bytes that are not UTF-8 (a path may hold them) become U+FFFD
/// instead of an exception.
inline std::string text_of(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

/// A JSON value as a message shows it, shortened when long.
KILN_DECL std::string shown(const json& value);

template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) {
  { enum_names(e).begin()->first } -> std::convertible_to<std::string_view>;
};

template <class T>
struct vector_element {};
template <class T, class A>
struct vector_element<std::vector<T, A>> {
  using type = T;
};
template <class T>
concept Vector = requires { typename vector_element<T>::type; };

/// The types an option can have, apart from nested Configurable types.
template <class T>
constexpr bool is_value() {
  if constexpr (Vector<T>) {
    return is_value<typename vector_element<T>::type>();
  } else {
    return std::integral<T> || std::floating_point<T> || std::same_as<T, std::string> ||
           std::same_as<T, std::filesystem::path> || NamedEnum<T>;
  }
}

template <class T>
constexpr bool check_value_type() {
  static_assert(is_value<T>(),
                "kiln::config: an option listed by each_option, or read with value<T>(), has a type kiln::config "
                "cannot read (it is named in the 'with T = ...' note below); use bool, an integer, double, "
                "std::string, std::filesystem::path, an enum with an enum_names(E) function, an std::vector of "
                "those, or a type with its own each_option.");
  return true;
}

template <NamedEnum E>
std::string one_of() {
  std::string names;
  for (const auto& [name, value] : enum_names(E{})) names += concat(names.empty() ? "" : ", ", '"', name, '"');
  return "one of " + names;
}

/// What an option of type T accepts, for messages: "a number", "an integer", ...
template <class T>
std::string expected() {
  if constexpr (std::same_as<T, bool>) {
    return "true or false";
  } else if constexpr (std::integral<T>) {
    return "an integer";
  } else if constexpr (std::floating_point<T>) {
    return "a number";
  } else if constexpr (std::same_as<T, std::string>) {
    return "a string";
  } else if constexpr (std::same_as<T, std::filesystem::path>) {
    return "a path (a string)";
  } else if constexpr (NamedEnum<T>) {
    return one_of<T>();
  } else {
    return "a list of values, each " + expected<typename vector_element<T>::type>();
  }
}

template <std::integral T>
std::string integer_range() {
  return concat("an integer from ", +std::numeric_limits<T>::min(), " to ", +std::numeric_limits<T>::max());
}

template <NamedEnum E>
E enum_from_name(std::string_view text, const source& at, std::string_view got) {
  for (const auto& [name, value] : enum_names(E{})) {
    if (name == text) return value;
  }
  wrong_value(at, one_of<E>(), got);
}

/// `value` as the floating-point type T, refused when T cannot hold it (1e39 as a float).
template <std::floating_point T>
T narrowed(double value, const source& at, std::string_view got) {
  constexpr double largest = static_cast<double>(std::numeric_limits<T>::max());
  if (std::isfinite(value) && std::abs(value) > largest) {
    wrong_value(at, concat("a number from ", -largest, " to ", largest), got);
  }
  return static_cast<T>(value);
}

KILN_DECL std::string_view trimmed(std::string_view text);

/// The value of an option of type T written as text (on the command line), parsed strictly:
/// the whole text must be one value of that type.
template <class T>
T from_text(std::string_view text, const source& at) {
  if constexpr (std::same_as<T, bool>) {
    if (text == "true") return true;
    if (text == "false") return false;
    wrong_value(at, expected<T>(), quoted(text));
  } else if constexpr (std::integral<T> || std::floating_point<T>) {
    using parsed = std::conditional_t<std::floating_point<T>, double, T>;
    const std::string_view digits = text.starts_with('+') ? text.substr(1) : text;
    parsed value{};
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if constexpr (std::integral<T>) {
      if (error == std::errc::result_out_of_range) wrong_value(at, integer_range<T>(), quoted(text));
    }
    if (digits.empty() || error != std::errc{} || end != digits.data() + digits.size() ||
        digits.starts_with('+')) {
      wrong_value(at, expected<T>(), quoted(text));
    }
    if constexpr (std::floating_point<T>) {
      if (std::isnan(value)) wrong_value(at, "a number (NaN is not one)", quoted(text));
      return narrowed<T>(value, at, quoted(text));
    } else {
      return value;
    }
  } else if constexpr (std::same_as<T, std::string> || std::same_as<T, std::filesystem::path>) {
    return T(std::string{text});
  } else if constexpr (NamedEnum<T>) {
    return enum_from_name<T>(text, at, quoted(text));
  } else {
    using element = typename vector_element<T>::type;
    std::string_view items = trimmed(text);
    if (items.starts_with('[') && items.ends_with(']')) items = trimmed(items.substr(1, items.size() - 2));
    T values;
    if (items.empty()) return values;
    for (std::size_t begin = 0;;) {
      const std::size_t comma = std::min(items.find(',', begin), items.size());
      const std::string key = concat(at.key, '[', values.size(), ']');
      values.push_back(from_text<element>(trimmed(items.substr(begin, comma - begin)), {key, at.origin}));
      if (comma == items.size()) return values;
      begin = comma + 1;
    }
  }
}

/// The value of an option of type T given in a JSON file: the JSON type must be the option's.
template <class T>
T from_json(const json& value, const source& at) {
  if constexpr (std::same_as<T, bool>) {
    if (!value.is_boolean()) wrong_value(at, expected<T>(), shown(value));
    return value.get<bool>();
  } else if constexpr (std::integral<T>) {
    if (!value.is_number_integer()) {
      wrong_value(at, value.is_number() ? "an integer (written without a decimal point or exponent)" : expected<T>(),
                  shown(value));
    }
    if (value.is_number_unsigned()) {
      const auto n = value.get<std::uint64_t>();
      if (std::in_range<T>(n)) return static_cast<T>(n);
    } else {
      const auto n = value.get<std::int64_t>();
      if (std::in_range<T>(n)) return static_cast<T>(n);
    }
    wrong_value(at, integer_range<T>(), shown(value));
  } else if constexpr (std::floating_point<T>) {
    if (value.is_number()) return narrowed<T>(value.get<double>(), at, shown(value));
    if (value.is_string()) {
      const auto& text = value.get_ref<const std::string&>();
      if (text == "inf" || text == "infinity") return std::numeric_limits<T>::infinity();
      if (text == "-inf" || text == "-infinity") return -std::numeric_limits<T>::infinity();
    }
    wrong_value(at, "a number (or \"inf\", \"-inf\")", shown(value));
  } else if constexpr (std::same_as<T, std::string> || std::same_as<T, std::filesystem::path>) {
    if (!value.is_string()) wrong_value(at, expected<T>(), shown(value));
    return T(value.get<std::string>());
  } else if constexpr (NamedEnum<T>) {
    if (!value.is_string()) wrong_value(at, expected<T>(), shown(value));
    return enum_from_name<T>(value.get_ref<const std::string&>(), at, shown(value));
  } else {
    using element = typename vector_element<T>::type;
    if (!value.is_array()) wrong_value(at, expected<T>(), shown(value));
    T values;
    for (const auto& item : value) {
      const std::string key = concat(at.key, '[', values.size(), ']');
      values.push_back(from_json<element>(item, {key, at.origin}));
    }
    return values;
  }
}

/// What kind of value an option holds, for the search spaces that range over it.
enum class value_kind { boolean, integer, real, text, named, list };

template <class T>
constexpr value_kind kind_of() {
  if constexpr (std::same_as<T, bool>) {
    return value_kind::boolean;
  } else if constexpr (std::integral<T>) {
    return value_kind::integer;
  } else if constexpr (std::floating_point<T>) {
    return value_kind::real;
  } else if constexpr (std::same_as<T, std::string> || std::same_as<T, std::filesystem::path>) {
    return value_kind::text;
  } else if constexpr (NamedEnum<T>) {
    return value_kind::named;
  } else {
    return value_kind::list;
  }
}

/// What the configuration knows of an option it has read: its kind, and how to check a value
/// for it without setting it (from_json's checks, so the same messages).
struct option_type {
  value_kind kind;
  void (*check)(const json& value, const source& at);
};

template <class T>
option_type option_type_of() {
  return {kind_of<T>(), [](const json& value, const source& at) { (void)from_json<T>(value, at); }};
}

/// An option's value as the effective configuration writes it; from_json reads it back equal.
template <class T>
json to_json(const T& value) {
  if constexpr (std::floating_point<T>) {
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    if (std::isnan(value)) return "nan";
    return static_cast<double>(value);
  } else if constexpr (std::same_as<T, std::filesystem::path>) {
    return value.string();
  } else if constexpr (NamedEnum<T>) {
    for (const auto& [name, v] : enum_names(T{})) {
      if (v == value) return std::string{name};
    }
    return static_cast<std::int64_t>(value);  // a value enum_names leaves out: its number
  } else if constexpr (Vector<T>) {
    json values = json::array();
    for (const auto& item : value) values.push_back(to_json(item));
    return values;
  } else {
    return value;
  }
}

inline bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/// Throws unless `key` is names of letters, digits, '_' and '-' joined by single dots.
KILN_DECL void check_key(std::string_view key, std::string_view origin);

/// The part of a key before its last dot ("" for a key without one), and the part after.
inline std::string_view section_of(std::string_view key) {
  const auto dot = key.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : key.substr(0, dot);
}
inline std::string_view name_of(std::string_view key) { return key.substr(key.rfind('.') + 1); }

/// Edit distance with adjacent transpositions (optimal string alignment), ignoring case.
KILN_DECL std::size_t edit_distance(std::string_view a, std::string_view b);

/// "learning_rate" -> "lr": the first letter of each word, so that a name spelled out finds its
/// abbreviation and the other way round.
KILN_DECL std::string initials(std::string_view name);

/// How far `known` is from the mistyped `key`: 0 when one's name abbreviates the other's in the
/// same section, else the edit distance between the whole keys.
KILN_DECL std::size_t distance(std::string_view key, std::string_view known);

KILN_DECL std::string joined(const std::vector<std::string>& parts, std::string_view separator);

}  // namespace detail::configuration

/// A pipeline's runtime configuration: values from JSON files and the command line, applied to
/// the policies' options by key, with the effective result recorded. See the file comment for
/// the keys, the types and the errors.
///
///   auto cfg = kiln::config::from_command_line(argc, argv);   // --config run.json --set optimizer.lr=1e-3
///   auto cfg = kiln::config::from_json(R"({"optimizer": {"lr": 1e-3}, "fit": {"epochs": 5}})");
///   kiln::sgd sgd;  cfg.apply("optimizer", sgd);             // what a trainer does for each role
class config {
  using json = detail::configuration::json;
  using source = detail::configuration::source;

 public:
  /// An empty configuration: every option keeps the value written in the code.
  config() = default;

  /// Reads `--config FILE` (repeatable: later files override earlier ones) and `--set KEY=VALUE`
  /// (repeatable; overrides every file), and up to `options.positional.size()` positional
  /// arguments (see positional()). `--help` prints the usage and exits with status 0; anything
  /// else on the command line is a config_error.
  ///   kiln::config::from_command_line(argc, argv, {.positional = {"data-dir"}})
  KILN_DECL static config from_command_line(int argc, const char* const* argv,
                                            const command_line_options& options = {});

  /// The text --help prints for `program` with these options.
  KILN_DECL static std::string usage(std::string_view program, const command_line_options& options = {});

  /// The configuration in JSON `text` (an object); `origin` names it in messages.
  ///   kiln::config::from_json(R"({"optimizer": {"lr": 0.01}, "scheduler.gamma": 0.5})")
  KILN_DECL static config from_json(std::string_view text, std::string_view origin = "JSON text");

  /// The configuration in the JSON file at `path`.
  KILN_DECL static config from_json_file(const std::filesystem::path& path);

  /// Sets `key` to `text`, parsed by the type of the option it is applied to, as --set does;
  /// overrides what the configuration held. `origin` names it in messages.
  ///   cfg.set("optimizer.lr", "0.01");  cfg.set("scheduler.milestones", "[30, 80]");
  KILN_DECL void set(std::string_view key, std::string_view text, std::string_view origin = "config::set");

  /// True when the configuration gives `key` (from a file, --set or set()).
  [[nodiscard]] bool contains(std::string_view key) const { return given_.find(key) != given_.end(); }

  /// The positional arguments from_command_line was given, in order (no more than it was told).
  [[nodiscard]] const std::vector<std::string>& positional() const noexcept { return positional_; }

  /// The value of a key of the program's own: the configuration's, or `fallback`. Either way the
  /// key becomes known (check_all_used accepts it) and enters the effective configuration.
  ///   const auto batch_size = cfg.value("data.batch_size", std::int64_t{64});
  template <class T>
  T value(std::string_view key, T fallback) {
    static_assert(detail::configuration::check_value_type<T>());
    detail::configuration::check_key(key, "config::value");
    read(std::string{key}, fallback, nullptr);
    return fallback;
  }
  std::string value(std::string_view key, const char* fallback) { return value(key, std::string{fallback}); }

  /// Sets each option that `policy` lists in each_option from the key "<section>.<name>" when the
  /// configuration gives it, records every option's value, then calls `policy.validate()` where
  /// the policy has one (its error then names the keys the configuration set).
  ///   kiln::adamw opt{.lr = 3e-4};
  ///   cfg.apply("optimizer", opt);  // --set optimizer.lr=1e-3: opt.lr == 1e-3
  template <Configurable P>
  void apply(std::string_view section, P& policy) {
    std::vector<std::string> set_here;
    apply_options(std::string{section}, policy, set_here);
    if constexpr (requires { policy.validate(); }) {
      try {
        policy.validate();
      } catch (const std::invalid_argument& e) {
        if (set_here.empty()) throw;
        throw config_error(detail::concat(e.what(), " (the configuration set ",
                                          detail::configuration::joined(set_here, ", "), ")"));
      }
    }
  }

  /// Applies "<section>.<config_name>" to each callback in the list that has a config_name and
  /// options; the second callback of a type gets "<config_name>_2", the third "_3", and so on.
  template <class... Cs>
  void apply(std::string_view section, callbacks<Cs...>& list) {
    std::vector<std::string_view> names;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (apply_callback(section, list.template get<I>(), names), ...);
    }(std::index_sequence_for<Cs...>{});
  }

  /// Throws a config_error naming every key the configuration gives that nothing has read —
  /// where it came from and the nearest keys that exist. The trainer calls it when built.
  KILN_DECL void check_all_used() const;

  /// Every key read so far (options of applied policies and keys read with value()) with its
  /// value in force, as a flat JSON object, one "key": value per line, in the order read.
  [[nodiscard]] KILN_DECL std::string effective_json() const;

  /// The kind of the option at `key` once something has read it (a trainer's policies, value());
  /// a key nothing has read is a config_error that names the nearest known keys, as
  /// check_all_used() does. kiln::tune::search_space checks its dimensions with it.
  [[nodiscard]] KILN_DECL detail::configuration::value_kind kind_of(std::string_view key) const;

  /// Throws the config_error that setting `key` to `value` would raise (a wrong type, a name
  /// that is not one of an enum's, an integer out of range), naming `origin`; sets nothing.
  KILN_DECL void check_value(std::string_view key, const nlohmann::ordered_json& value, std::string_view origin) const;

  /// True when the command line asked for the program's search space (--print-search-space):
  /// kiln::tune::search_space::check prints it and ends the program, before any training.
  [[nodiscard]] bool search_space_requested() const noexcept { return print_search_space_; }

  /// Called by a trainer before each fit: a program asked for its search space that declares
  /// none would otherwise train instead of answering, so this is a config_error.
  KILN_DECL void check_before_training() const;

 private:
  struct given_value {
    json from_file;      ///< the value, when it came from a file
    std::string text;    ///< from --set or set(), when is_text
    bool is_text = false;
    std::string origin;  ///< "--set", "file 'run.json'", ...
    bool used = false;
  };

  struct arguments {
    std::vector<std::string> files, sets, positional;
    bool help = false;
    bool print_search_space = false;
  };

  // The command line's words, GNU style: "--config FILE" or "--config=FILE", the same for --set,
  // "--" before positional arguments that begin with '-'. Read by hand rather than with CLI11:
  // three options need no more, and CLI11 added 5 s to the compile time of every file that
  // includes this header (bench/README.md).
  KILN_DECL static arguments read_arguments(int argc, const char* const* argv, const command_line_options& options,
                                            const std::string& program);

  KILN_DECL void merge_file(const std::filesystem::path& path);

  KILN_DECL void merge_json(std::string_view text, const std::string& origin);

  // {"a": {"b": 1}, "c.d": 2} -> "a.b": 1, "c.d": 2. An empty object is a value (so that a key
  // given as {} is reported, not silently dropped).
  KILN_DECL static void flatten(const json& object, const std::string& prefix, const std::string& origin,
                                std::map<std::string, json, std::less<>>& out);

  template <class P>
  void apply_options(const std::string& section, P& policy, std::vector<std::string>& set_here) {
    policy.each_option([&](std::string_view name, auto& option) {
      using T = std::remove_cvref_t<decltype(option)>;
      const std::string key = section.empty() ? std::string{name} : detail::concat(section, '.', name);
      if constexpr (Configurable<T>) {
        apply_options(key, option, set_here);
      } else if constexpr (!Policy<T>) {  // a nested policy without runtime options has nothing to set
        static_assert(detail::configuration::check_value_type<T>());
        read(key, option, &set_here);
      }
    });
  }

  template <class C>
  void apply_callback(std::string_view section, C& callback, std::vector<std::string_view>& names) {
    if constexpr (Configurable<C> && requires { { C::config_name } -> std::convertible_to<std::string_view>; }) {
      const std::string_view name = C::config_name;
      const auto earlier = std::count(names.begin(), names.end(), name);
      names.push_back(name);
      apply(earlier == 0 ? detail::concat(section, '.', name) : detail::concat(section, '.', name, '_', earlier + 1),
            callback);
    }
  }

  // Sets `value` from the configuration when it gives `key`; records the value in force.
  template <class T>
  void read(const std::string& key, T& value, std::vector<std::string>* set_here) {
    if (const auto it = given_.find(key); it != given_.end()) {
      given_value& given = it->second;
      const source at{key, given.origin};
      value = given.is_text ? detail::configuration::from_text<T>(given.text, at)
                            : detail::configuration::from_json<T>(given.from_file, at);
      given.used = true;
      if (set_here != nullptr) {
        const auto shown = detail::configuration::text_of(detail::configuration::to_json(value));
        set_here->push_back(detail::concat(key, " = ", shown, " from ", given.origin));
      }
    }
    effective_[key] = detail::configuration::to_json(value);
    types_.insert_or_assign(key, detail::configuration::option_type_of<T>());
  }

  // What follows "unknown key '...' (from ...)": the nearest known keys, or what exists.
  [[nodiscard]] KILN_DECL std::string hint(std::string_view key) const;

  std::map<std::string, given_value, std::less<>> given_;
  json effective_ = json::object();
  std::map<std::string, detail::configuration::option_type, std::less<>> types_;  // of each key read
  std::vector<std::string> positional_;
  bool print_search_space_ = false;
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail::configuration {

KILN_DECL std::string shown(const json& value) {
  std::string text = text_of(value);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

KILN_DECL std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

KILN_DECL void check_key(std::string_view key, std::string_view origin) {
  bool ok = !key.empty() && !key.starts_with('.') && !key.ends_with('.') && key.find("..") == std::string_view::npos;
  for (const char c : key) ok = ok && (c == '.' || is_name_char(c));
  if (!ok) {
    throw config_error(concat("kiln::config: '", key, "' (from ", origin,
                              ") is not a key; a key is names of letters, digits, '_' and '-' joined by '.', "
                              "such as optimizer.lr"));
  }
}

KILN_DECL std::size_t edit_distance(std::string_view a, std::string_view b) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

KILN_DECL std::string initials(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (i == 0 || name[i - 1] == '_' || name[i - 1] == '-') out += name[i];
  }
  return out;
}

KILN_DECL std::size_t distance(std::string_view key, std::string_view known) {
  if (section_of(key) == section_of(known)) {
    const auto a = name_of(key), b = name_of(known);
    if ((a.find('_') != std::string_view::npos && initials(a) == b) ||
        (b.find('_') != std::string_view::npos && initials(b) == a)) {
      return 0;
    }
  }
  return edit_distance(key, known);
}

KILN_DECL std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) out += concat(out.empty() ? "" : separator, part);
  return out;
}

}  // namespace kiln::detail::configuration

namespace kiln {

KILN_DECL config config::from_command_line(int argc, const char* const* argv, const command_line_options& options) {
  const std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "program";
  const auto given = read_arguments(argc, argv, options, program);
  if (given.help) {
    std::fputs(usage(program, options).c_str(), stdout);
    std::fflush(stdout);
    std::exit(0);
  }
  config result;
  for (const auto& file : given.files) result.merge_file(file);
  for (const auto& assignment : given.sets) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos) {
      throw config_error(detail::concat(
          "kiln::config: --set expects KEY=VALUE, such as --set optimizer.lr=0.001; got '", assignment, "'"));
    }
    const std::string_view text = assignment;
    result.set(text.substr(0, equals), text.substr(equals + 1), "--set");
  }
  result.positional_ = given.positional;
  result.print_search_space_ = given.print_search_space;
  return result;
}

KILN_DECL std::string config::usage(std::string_view program, const command_line_options& options) {
  std::string out;
  if (!options.description.empty()) out += options.description + "\n";
  out += detail::concat("Usage: ", program, " [OPTIONS]");
  for (const auto& name : options.positional) out += detail::concat(" [", name, "]");
  out +=
      "\n\n"
      "Options:\n"
      "  -h, --help         Print this help and exit\n"
      "  --config FILE      A JSON file of options: {\"optimizer\": {\"lr\": 0.001}, \"fit.epochs\": 5}.\n"
      "                     Repeatable; later files override earlier ones\n"
      "  --set KEY=VALUE    One option, such as optimizer.lr=0.001 or scheduler.milestones=30,80.\n"
      "                     Repeatable; overrides the files\n"
      "  --print-search-space Print the program's hyperparameter search space as JSON (what\n"
      "                     tools/kiln_optuna.py reads) and exit, once every key is checked\n"
      "\n"
      "Keys: backbone.*, loss.*, optimizer.*, scheduler.*, fit.*, callbacks.<name>.* (the options of each\n"
      "policy in the pipeline) and the program's own; an unknown key is an error that lists the known ones.\n";
  return out;
}

KILN_DECL config config::from_json(std::string_view text, std::string_view origin) {
  config result;
  result.merge_json(text, std::string{origin});
  return result;
}

KILN_DECL config config::from_json_file(const std::filesystem::path& path) {
  config result;
  result.merge_file(path);
  return result;
}

KILN_DECL void config::set(std::string_view key, std::string_view text, std::string_view origin) {
  detail::configuration::check_key(key, origin);
  given_.insert_or_assign(std::string{key}, given_value{.from_file = {}, .text = std::string{text}, .is_text = true,
                                                        .origin = std::string{origin}, .used = false});
}

KILN_DECL void config::check_all_used() const {
  std::vector<std::string> problems;
  for (const auto& [key, given] : given_) {
    if (!given.used) {
      problems.push_back(detail::concat("unknown key '", key, "' (from ", given.origin, ")", hint(key)));
    }
  }
  if (!problems.empty()) {
    throw config_error("kiln::config: " + detail::configuration::joined(problems, "\nkiln::config: "));
  }
}

KILN_DECL std::string config::effective_json() const {
  if (effective_.empty()) return "{}";
  std::string out = "{";
  for (const auto& [key, value] : effective_.items()) {
    out += detail::concat(out.size() > 1 ? ",\n  " : "\n  ", json(key).dump(), ": ",
                          detail::configuration::text_of(value));
  }
  return out += "\n}";
}

KILN_DECL detail::configuration::value_kind config::kind_of(std::string_view key) const {
  const auto it = types_.find(key);
  if (it == types_.end()) {
    throw config_error(detail::concat("kiln::config: unknown key '", key, "'", hint(key)));
  }
  return it->second.kind;
}

KILN_DECL void config::check_value(std::string_view key, const json& value, std::string_view origin) const {
  (void)kind_of(key);
  types_.find(key)->second.check(value, source{key, origin});
}

KILN_DECL void config::check_before_training() const {
  if (print_search_space_) {
    throw config_error(
        "kiln::config: --print-search-space, but no search space was checked before this fit; declare one "
        "with kiln::tune::search_space and call its check(config) once the trainers are built and before "
        "any fit (see kiln/tune/search_space.hpp)");
  }
}

KILN_DECL config::arguments config::read_arguments(int argc, const char* const* argv,
                                                   const command_line_options& options, const std::string& program) {
  const auto fail = [&](const std::string& problem) -> config_error {
    return config_error(detail::concat("kiln::config: ", problem, "; run '", program, " --help' for the usage"));
  };
  arguments given;
  for (int i = 1; i < argc && std::string_view{argv[i]} != "--"; ++i) {
    const std::string_view word = argv[i];
    if (word == "-h" || word == "--help") {  // before any error, whatever else is there
      given.help = true;
      return given;
    }
  }
  bool options_end = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (options_end || !word.starts_with('-') || word == "-") {
      if (given.positional.size() == options.positional.size()) {
        const auto& names = options.positional;
        throw fail(detail::concat("unexpected argument '", word, "'; ", program,
                                  names.empty() ? " takes no positional arguments"
                                                : detail::concat(" takes at most ", names.size(), " (",
                                                                 detail::configuration::joined(names, ", "), ")")));
      }
      given.positional.emplace_back(word);
    } else if (word == "--") {
      options_end = true;
    } else if (word == "--print-search-space") {
      given.print_search_space = true;
    } else {
      const auto equals = word.find('=');
      const std::string_view name = word.substr(0, equals);
      if (name != "--config" && name != "--set") {
        throw fail(detail::concat("unknown option '", name,
                                  "'; the options are --config FILE, --set KEY=VALUE, --print-search-space and --help"));
      }
      std::string value;
      if (equals != std::string_view::npos) {
        value = word.substr(equals + 1);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        throw fail(detail::concat(name, " needs a value (", name == "--set" ? "KEY=VALUE" : "FILE", ")"));
      }
      (name == "--set" ? given.sets : given.files).push_back(std::move(value));
    }
  }
  return given;
}

KILN_DECL void config::merge_file(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw config_error(
        detail::concat("kiln::config: '", path.string(), "' is a directory, not a configuration file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw config_error(detail::concat("kiln::config: cannot open the configuration file '", path.string(),
                                      "': ", std::strerror(errno), "; check the path given to --config"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  merge_json(text.str(), detail::concat("file '", path.string(), "'"));
}

KILN_DECL void config::merge_json(std::string_view text, const std::string& origin) {
  json document;
  try {
    document = json::parse(text.begin(), text.end(), nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // a parse error, or a number beyond a double ("1e400")
    std::string_view reason = e.what();  // "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    if (const auto bracket = reason.find("] "); reason.starts_with('[') && bracket != std::string_view::npos) {
      reason.remove_prefix(bracket + 2);
    }
    throw config_error(detail::concat("kiln::config: ", origin, " is not valid JSON: ", reason));
  }
  if (!document.is_object()) {
    throw config_error(detail::concat("kiln::config: ", origin, " must hold a JSON object such as ",
                                      "{\"optimizer\": {\"lr\": 0.001}}, not ", document.type_name()));
  }
  std::map<std::string, json, std::less<>> flat;
  flatten(document, "", origin, flat);
  for (auto& [key, value] : flat) {
    given_.insert_or_assign(key, given_value{.from_file = std::move(value), .text = {}, .is_text = false,
                                             .origin = origin, .used = false});
  }
}

KILN_DECL void config::flatten(const json& object, const std::string& prefix, const std::string& origin,
                               std::map<std::string, json, std::less<>>& out) {
  for (const auto& [name, value] : object.items()) {
    const std::string key = prefix.empty() ? name : detail::concat(prefix, '.', name);
    detail::configuration::check_key(key, origin);
    if (value.is_object() && !value.empty()) {
      flatten(value, key, origin, out);
    } else if (!out.emplace(key, value).second) {
      throw config_error(detail::concat("kiln::config: ", origin, " gives '", key,
                                        "' twice (as a nested object and as a dotted name); keep one"));
    }
  }
}

KILN_DECL std::string config::hint(std::string_view key) const {
  namespace c = detail::configuration;
  if (effective_.empty()) {
    return "; nothing has read the configuration yet: read your own keys with config.value(key, default) and "
           "build the kiln::trainer before calling check_all_used()";
  }
  std::vector<std::string> inside, nearest;
  std::size_t best = std::max<std::size_t>(2, key.size() / 8);  // the farthest a suggestion may be
  for (const auto& [known, value] : effective_.items()) {
    if (std::string_view{known}.starts_with(std::string{key} + '.')) inside.push_back(known);
    const std::size_t d = c::distance(key, known);
    if (d < best) nearest.clear(), best = d;
    if (d == best) nearest.push_back(known);
  }
  if (!inside.empty()) {
    if (inside.size() > 8) inside.resize(8), inside.emplace_back("...");
    return detail::concat("; '", key, "' is a section, not a value: give one of its keys (",
                          c::joined(inside, ", "), ")");
  }
  if (!nearest.empty() && nearest.size() <= 3) {
    for (auto& k : nearest) k = c::quoted(k);
    return detail::concat("; did you mean ", c::joined(nearest, " or "), "?");
  }
  // "optimizer.lr" (or "optimizer.learning_rate") where a kiln::one_of nests each alternative's
  // options: "optimizer.sgd.lr".
  std::vector<std::string> nested;
  for (const auto& [known, value] : effective_.items()) {
    const std::string_view k = known;
    if (c::distance(c::name_of(key), c::name_of(k)) == 0 &&
        c::section_of(k).starts_with(detail::concat(c::section_of(key), '.'))) {
      nested.push_back(c::quoted(known));
    }
  }
  if (!nested.empty()) return detail::concat("; did you mean ", c::joined(nested, " or "), "?");
  std::vector<std::string> siblings, sections;
  for (const auto& [known, value] : effective_.items()) {
    const auto section = std::string{c::section_of(known)};
    if (section == c::section_of(key)) siblings.emplace_back(c::name_of(known));
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) sections.push_back(section);
  }
  if (!siblings.empty()) {
    return detail::concat("; the keys of '", c::section_of(key), "' are ", c::joined(siblings, ", "));
  }
  return detail::concat("; the known sections are ", c::joined(sections, ", "),
                        " (keys of your own are read with config.value(key, default) before the kiln::trainer is "
                        "built)");
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
