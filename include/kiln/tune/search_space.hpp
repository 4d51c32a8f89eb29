// kiln/tune/search_space.hpp — the hyperparameters a study may try, declared beside the pipeline.
//
// A search space ranges over a program's configuration keys (kiln/config/config.hpp): each
// dimension is a key with the values a trial may give it. The program declares it, builds its
// trainers (which makes every key known), then checks the space against the keys:
//
//   #include <kiln/tune/search_space.hpp>
//   const kiln::tune::search_space space{
//       kiln::tune::categorical("optimizer.type", {"adamw", "sgd"}),
//       kiln::tune::log_uniform("optimizer.adamw.lr", 1e-4, 1e-2).when("optimizer.type", "adamw"),
//       kiln::tune::uniform("optimizer.sgd.momentum", 0.5, 0.99).when("optimizer.type", "sgd"),
//       kiln::tune::integer("data.batch_size", 16, 128, {.step = 16})};
//   auto config = kiln::config::from_command_line(argc, argv);
//   ...                                   // read the program's keys, build the trainers
//   space.check(config);                  // before any training
//
// check() throws kiln::config_error before anything trains when a key is one nothing reads (with
// the nearest known keys), when a range does not fit the option's type (a float range over an
// integer option, a choice that is not one of an enum's names, a bound out of range), or when a
// range is empty or malformed. Under --print-search-space it then prints the space and ends the
// program with status 0: one JSON object whose "params" list each key with its distribution in
// Optuna's own JSON (optuna.distributions.json_to_distribution reads it), and "when" for a
// conditional key — what tools/kiln_optuna.py reads to run a study (tools/README.md).
//
// A conditional dimension, .when(key, values...), is tried only in trials that give an earlier
// dimension one of those values: the options of one alternative of a kiln::one_of
// (kiln/tune/one_of.hpp), say. Optuna's TPE sampler with `group` models such spaces.
#pragma once

#include <kiln/config/config.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kiln::tune {

/// One value a categorical dimension may take, or a .when() condition names.
class value {
 public:
  value(bool b) : json_(b) {}                                     // NOLINT: values are written bare
  value(int i) : json_(static_cast<std::int64_t>(i)) {}           // NOLINT
  value(std::int64_t i) : json_(i) {}                             // NOLINT
  value(double d) : json_(d) {}                                   // NOLINT
  value(const char* s) : json_(std::string{s}) {}                 // NOLINT
  value(std::string s) : json_(std::move(s)) {}                   // NOLINT
  [[nodiscard]] const nlohmann::ordered_json& json() const noexcept { return json_; }

 private:
  nlohmann::ordered_json json_;
};

struct uniform_options {
  double step = 0;  ///< > 0: only low, low + step, ... (Optuna's discrete float); 0: continuous
};
struct integer_options {
  std::int64_t step = 1;
  bool log = false;  ///< sample on a log scale (step must then be 1)
};

/// One dimension of a search space: a configuration key and the values it may take.
class dimension {
 public:
  enum class kind { real, integer, categorical };

  /// Tried only in trials whose dimension `key` (declared earlier) takes one of `values`.
  ///   kiln::tune::uniform("optimizer.sgd.momentum", 0.5, 0.99).when("optimizer.type", "sgd")
  template <class... Values>
  dimension when(std::string key, Values... values) && {
    static_assert(sizeof...(Values) >= 1, "kiln::tune::dimension::when: name at least one value");
    conditions_.push_back({std::move(key), {value(values).json()...}});
    return std::move(*this);
  }

  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  [[nodiscard]] kind type() const noexcept { return kind_; }

  /// Optuna's JSON for this dimension's distribution (what distribution_to_json writes).
  [[nodiscard]] KILN_DECL nlohmann::ordered_json distribution() const;

 private:
  friend dimension uniform(std::string, double, double, uniform_options);
  friend dimension log_uniform(std::string, double, double);
  friend dimension integer(std::string, std::int64_t, std::int64_t, integer_options);
  friend dimension categorical(std::string, std::vector<value>);
  friend class search_space;

  struct condition {
    std::string key;
    std::vector<nlohmann::ordered_json> values;
  };

  dimension(std::string key, kind k) : key_(std::move(key)), kind_(k) {}

  std::string key_;
  kind kind_;
  double low_ = 0, high_ = 0, step_ = 0;  // real and integer (integer bounds held exactly below)
  std::int64_t int_low_ = 0, int_high_ = 0, int_step_ = 1;
  bool log_ = false;
  std::vector<nlohmann::ordered_json> choices_;
  std::vector<condition> conditions_;
};

/// A floating-point option drawn uniformly from [low, high]; with a step, from low, low + step, ...
inline dimension uniform(std::string key, double low, double high, uniform_options options = {}) {
  dimension d{std::move(key), dimension::kind::real};
  d.low_ = low, d.high_ = high, d.step_ = options.step;
  return d;
}

/// A floating-point option drawn log-uniformly from [low, high] (low > 0): learning rates.
inline dimension log_uniform(std::string key, double low, double high) {
  dimension d{std::move(key), dimension::kind::real};
  d.low_ = low, d.high_ = high, d.log_ = true;
  return d;
}

/// An integer option from low, low + step, ..., high (on a log scale with .log).
inline dimension integer(std::string key, std::int64_t low, std::int64_t high, integer_options options = {}) {
  dimension d{std::move(key), dimension::kind::integer};
  d.int_low_ = low, d.int_high_ = high, d.int_step_ = options.step, d.log_ = options.log;
  return d;
}

/// An option that takes one of `choices`: names of a kiln::one_of's alternatives or an enum's,
/// numbers, booleans, strings.
inline dimension categorical(std::string key, std::vector<value> choices) {
  dimension d{std::move(key), dimension::kind::categorical};
  for (auto& c : choices) d.choices_.push_back(c.json());
  return d;
}

/// The dimensions a study explores; see the file comment.
class search_space {
 public:
  search_space(std::initializer_list<dimension> dimensions) : dimensions_(dimensions) {}

  [[nodiscard]] const std::vector<dimension>& dimensions() const noexcept { return dimensions_; }

  /// Checks every dimension against the keys `config` has read (build the trainers first); see
  /// the file comment. Under --print-search-space, prints the space and exits with status 0.
  KILN_DECL void check(const config& config) const;

  /// The space as --print-search-space prints it: {"kiln_search_space": 1, "params": [...]}.
  [[nodiscard]] KILN_DECL std::string json() const;

 private:
  std::vector<dimension> dimensions_;
};

}  // namespace kiln::tune

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::tune {

KILN_DECL nlohmann::ordered_json dimension::distribution() const {
  using json = nlohmann::ordered_json;
  switch (kind_) {
    case kind::real:
      return json{{"name", "FloatDistribution"},
                  {"attributes",
                   {{"low", low_}, {"high", high_}, {"step", step_ > 0 ? json(step_) : json(nullptr)}, {"log", log_}}}};
    case kind::integer:
      return json{{"name", "IntDistribution"},
                  {"attributes", {{"low", int_low_}, {"high", int_high_}, {"step", int_step_}, {"log", log_}}}};
    case kind::categorical:
      break;
  }
  return json{{"name", "CategoricalDistribution"}, {"attributes", {{"choices", choices_}}}};
}

KILN_DECL void search_space::check(const config& config) const {
  using detail::concat;
  using value_kind = detail::configuration::value_kind;
  const auto fail = [](const dimension& d, std::string_view problem) {
    throw config_error(concat("kiln::tune::search_space: '", d.key(), "' ", problem));
  };
  for (std::size_t i = 0; i < dimensions_.size(); ++i) {
    const dimension& d = dimensions_[i];
    for (std::size_t j = 0; j < i; ++j) {
      if (dimensions_[j].key() == d.key()) fail(d, "is declared twice; keep one dimension per key");
    }
    const auto origin = concat("the search space's dimension '", d.key(), "'");
    const value_kind kind = config.kind_of(d.key());  // an unknown key: the nearest known ones
    switch (d.type()) {
      case dimension::kind::real:
        if (kind != value_kind::real) {
          fail(d, "ranges over numbers (uniform, log_uniform), but the option is not a floating-point one; "
                  "use kiln::tune::integer or categorical");
        }
        if (!std::isfinite(d.low_) || !std::isfinite(d.high_) || !(d.low_ <= d.high_)) {
          fail(d, concat("needs finite bounds with low <= high; got [", d.low_, ", ", d.high_, "]"));
        }
        if (d.log_ && d.low_ <= 0) fail(d, concat("is log-uniform, so its low bound must be > 0; got ", d.low_));
        if (d.step_ < 0 || !std::isfinite(d.step_)) fail(d, concat("needs a step >= 0; got ", d.step_));
        if (d.step_ > 0) {
          const double steps = (d.high_ - d.low_) / d.step_;
          if (std::abs(steps - std::round(steps)) > 1e-9 * std::max(1.0, steps)) {
            fail(d, concat("has a step of ", d.step_, " that does not divide high - low = ", d.high_ - d.low_));
          }
        }
        config.check_value(d.key(), d.low_, origin);
        config.check_value(d.key(), d.high_, origin);
        break;
      case dimension::kind::integer:
        if (kind != value_kind::integer) {
          fail(d, "ranges over integers (kiln::tune::integer), but the option is not an integer one");
        }
        if (d.int_low_ > d.int_high_) fail(d, concat("needs low <= high; got [", d.int_low_, ", ", d.int_high_, "]"));
        if (d.int_step_ < 1) fail(d, concat("needs a step >= 1; got ", d.int_step_));
        if (d.log_ && (d.int_low_ < 1 || d.int_step_ != 1)) {
          fail(d, "is on a log scale, which needs low >= 1 and a step of 1");
        }
        if ((d.int_high_ - d.int_low_) % d.int_step_ != 0) {
          fail(d, concat("has a step of ", d.int_step_, " that does not divide high - low = ", d.int_high_ - d.int_low_));
        }
        config.check_value(d.key(), d.int_low_, origin);
        config.check_value(d.key(), d.int_high_, origin);
        break;
      case dimension::kind::categorical:
        if (d.choices_.empty()) fail(d, "has no choices; give at least one");
        for (std::size_t a = 0; a < d.choices_.size(); ++a) {
          if (d.choices_[a].is_number_float() && !std::isfinite(d.choices_[a].get<double>())) {
            fail(d, "has a choice that is not a finite number, which Optuna cannot store");
          }
          config.check_value(d.key(), d.choices_[a], origin);
          for (std::size_t b = 0; b < a; ++b) {
            if (d.choices_[a] == d.choices_[b]) {
              fail(d, concat("lists the choice ", d.choices_[a].dump(), " twice"));
            }
          }
        }
        break;
    }
    for (const auto& condition : d.conditions_) {
      const dimension* earlier = nullptr;
      for (std::size_t j = 0; j < i; ++j) {
        if (dimensions_[j].key() == condition.key) earlier = &dimensions_[j];
      }
      if (earlier == nullptr) {
        fail(d, concat("depends on '", condition.key,
                       "', which is not a dimension declared before it; declare that one first"));
      }
      for (const auto& v : condition.values) {
        config.check_value(condition.key, v, concat("the condition of dimension '", d.key(), "'"));
        if (earlier->type() == dimension::kind::categorical &&
            std::find(earlier->choices_.begin(), earlier->choices_.end(), v) == earlier->choices_.end()) {
          fail(d, concat("depends on '", condition.key, "' being ", v.dump(), ", which is not one of its choices"));
        }
      }
    }
  }
  if (config.search_space_requested()) {
    std::fputs((json() + "\n").c_str(), stdout);
    std::fflush(stdout);
    std::exit(0);
  }
}

KILN_DECL std::string search_space::json() const {
  using json = nlohmann::ordered_json;
  json params = json::array();
  for (const auto& d : dimensions_) {
    json param{{"name", d.key()}, {"distribution", d.distribution()}};
    if (!d.conditions_.empty()) {
      json when = json::object();
      for (const auto& c : d.conditions_) when[c.key] = c.values;
      param["when"] = when;
    }
    params.push_back(std::move(param));
  }
  return json{{"kiln_search_space", 1}, {"params", params}}.dump();
}

}  // namespace kiln::tune

#endif  // KILN_FUNCTION_DEFINITIONS
