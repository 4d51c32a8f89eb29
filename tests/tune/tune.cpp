// Hyperparameter search, the C++ side: kiln::one_of (a choice of policy types made by the
// configuration, once, with the chosen trainer's own loop), the search space (checked against the
// pipeline's keys, printed in Optuna's JSON, read back by Optuna itself) and the trial report.
// The driver, tools/kiln_optuna.py, is tested by tests/tune/test_driver.py.
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/config/config.hpp>
#include <kiln/kiln.hpp>
#include <kiln/tune/one_of.hpp>
#include <kiln/tune/search_space.hpp>
#include <kiln/tune/trial_report.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace kiln::test;

namespace {

using depths = kiln::one_of<kiln::freeze<0>, kiln::freeze<1>>;

template <class Config>
auto tunable(Config& config) {
  return kiln::trainer{config,
                       kiln::backbone<Mlp>{},
                       depths{},
                       kiln::one_of{kiln::adamw{.lr = 1e-2}, kiln::sgd{.lr = 0.1, .momentum = 0.5}},
                       kiln::callbacks{kiln::tune::trial_report{}}};
}

std::vector<nlohmann::json> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace

namespace other {
struct adamw : kiln::adamw {};  // named "adamw" too
}  // namespace other

namespace {
struct unnamed_optimizer : kiln::sgd {};
}  // namespace

TEST_CASE("kiln::one_of: the configuration picks the types, and the fit is the chosen trainer's, bit for bit") {
  const auto data = make_toy(96);
  const auto batches = [&] { return kiln::data::tensor_batches{data.x, data.y, {.batch_size = 16, .shuffle = true, .seed = 4}}; };

  torch::manual_seed(0);
  auto config = kiln::config::from_json(
      R"({"optimizer.type": "sgd", "optimizer.sgd.momentum": 0.8, "freeze.type": "freeze_1", "fit.epochs": 3})");
  auto chosen = tunable(config);
  CHECK(chosen.choices() == "freeze.type=freeze_1, optimizer.type=sgd");
  chosen.visit([](auto& t) {
    using T = std::remove_cvref_t<decltype(t)>;
    if constexpr (std::is_same_v<typename T::optimizer_policy, kiln::sgd>) {
      CHECK(T::frozen_children == 1);
      const auto& options = static_cast<const torch::optim::SGDOptions&>(t.optimizer().param_groups()[0].options());
      CHECK(options.momentum() == 0.8);  // optimizer.sgd.momentum
      CHECK(options.lr() == 0.1);        // the value written in code
      CHECK(!t.backbone()->fc1->weight.requires_grad());
    } else {
      FAIL("the configuration chose sgd");
    }
  });
  auto train = batches();
  const auto history = chosen.fit(train);
  REQUIRE(history.size() == 3);  // fit.epochs reached the chosen trainer

  // The trainer written with the chosen types: the same type as the one inside, the same run.
  torch::manual_seed(0);
  kiln::trainer written{kiln::backbone<Mlp>{}, kiln::freeze<1>{}, kiln::sgd{.lr = 0.1, .momentum = 0.8},
                        kiln::callbacks{kiln::tune::trial_report{}}};
  auto train_again = batches();
  const auto expected = written.fit(train_again, {.epochs = 3});
  for (std::size_t e = 0; e < 3; ++e) CHECK(history[e].at("train/loss") == expected[e].at("train/loss"));
  chosen.visit([&](auto& t) {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(t)>, decltype(written)>) {
      CHECK(same_state(t.model(), written.model()));
    } else {
      FAIL("the trainer inside is not the one written with the chosen types");
    }
  });
  CHECK(chosen.predict(batches()).equal(written.predict(batches())));
}

TEST_CASE("kiln::one_of: every alternative's options are keys; the effective configuration replays the choice") {
  auto config = kiln::config::from_json(R"({"optimizer.type": "sgd", "optimizer.adamw.lr": 0.03})");
  auto t = tunable(config);
  const auto effective = nlohmann::json::parse(t.state().hyperparameters);
  CHECK(effective["optimizer.type"] == "sgd");
  CHECK(effective["optimizer.adamw.lr"] == 0.03);  // not chosen, still read and recorded
  CHECK(effective["optimizer.sgd.lr"] == 0.1);
  CHECK(effective["optimizer.sgd.momentum"] == 0.5);
  CHECK(effective["freeze.type"] == "freeze_0");
  CHECK(!effective.contains("optimizer.lr"));  // the chosen policy is not configured a second time

  auto replay = kiln::config::from_json(t.state().hyperparameters);
  auto again = tunable(replay);
  CHECK(again.choices() == t.choices());
  CHECK(again.state().hyperparameters == t.state().hyperparameters);

  kiln::trainer without_config{kiln::backbone<Mlp>{}, depths{}, kiln::one_of<kiln::adamw, kiln::sgd>{}};
  CHECK(without_config.choices() == "freeze.type=freeze_0, optimizer.type=adamw");

  // Each combination reaches the trainer of its own types (freeze_1 with adamw is not freeze_0 with sgd).
  for (const auto& [freeze, optimizer] : {std::pair{"freeze_1", "adamw"}, std::pair{"freeze_0", "sgd"}}) {
    auto chosen = kiln::config::from_json(
        nlohmann::json{{"freeze.type", freeze}, {"optimizer.type", optimizer}}.dump());
    auto built = tunable(chosen);
    built.visit([&](auto& trainer) {
      using T = std::remove_cvref_t<decltype(trainer)>;
      CHECK(T::frozen_children == (std::string_view{freeze} == "freeze_1" ? 1 : 0));
      CHECK(std::is_same_v<typename T::optimizer_policy, kiln::sgd> == (std::string_view{optimizer} == "sgd"));
    });
  }
}

TEST_CASE("kiln::one_of: names, and the errors of a bad choice") {
  CHECK(kiln::detail::alternative_name("kiln::freeze<2>") == "freeze_2");
  CHECK(kiln::detail::alternative_name("kiln::warmup<kiln::cosine_annealing>") == "warmup_cosine_annealing");
  CHECK(kiln::detail::alternative_name("(anonymous namespace)::my_optimizer") == "my_optimizer");
  CHECK(kiln::detail::alternative_name("{anonymous}::my_optimizer") == "my_optimizer");
  CHECK(kiln::detail::policy_name<unnamed_optimizer>() == "unnamed_optimizer");  // as this compiler spells it
  CHECK(kiln::detail::alternative_name("acme::opt<3, acme::x<1> >") == "opt_3_x_1");
  CHECK(depths::names().size() == 2);
  CHECK(depths::names()[1].first == "freeze_1");
  try {
    (void)kiln::one_of<kiln::adamw, other::adamw>::names();
    FAIL("two alternatives named alike were accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string{e.what()} ==
          "kiln::one_of: two alternatives are both named 'adamw'; give one a `static constexpr std::string_view "
          "config_name`");
  }

  auto unknown = kiln::config::from_json(R"({"optimizer.type": "rmsprop"})");
  CHECK(message_of([&] { auto t = tunable(unknown); }) ==
        "kiln::config: optimizer.type (from JSON text) must be one of \"adamw\", \"sgd\", got \"rmsprop\"");
  auto negative = kiln::config::from_json(R"({"optimizer.type": "adamw", "optimizer.sgd.lr": -1})");
  CHECK(message_of([&] { auto t = tunable(negative); }) ==  // checked though adamw is chosen
        "kiln::sgd: lr must be a finite number >= 0, got -1 (the configuration set optimizer.type = \"adamw\" from "
        "JSON text, optimizer.sgd.lr = -1.0 from JSON text)");
  auto flat = kiln::config::from_json(R"({"optimizer.lr": 0.1})");
  CHECK(message_of([&] { auto t = tunable(flat); }) ==
        "kiln::config: unknown key 'optimizer.lr' (from JSON text); did you mean 'optimizer.adamw.lr' or "
        "'optimizer.sgd.lr'?");
}

namespace {

// A program's keys, as a trainer and value() make them known.
struct space_fixture {
  kiln::config config;
  decltype(tunable(std::declval<kiln::config&>())) trainer;
  explicit space_fixture(kiln::config c = {}) : config(std::move(c)), trainer(make(config)) {}
  static decltype(tunable(std::declval<kiln::config&>())) make(kiln::config& c) {
    (void)c.value("data.batch_size", std::int64_t{32});
    (void)c.value("data.scale", 1.0);
    (void)c.value("data.shuffle", true);
    return tunable(c);
  }
};

}  // namespace

TEST_CASE("kiln::tune::search_space: Optuna reads each dimension as the distribution it declares") {
  space_fixture program;
  const kiln::tune::search_space space{
      kiln::tune::categorical("optimizer.type", {"adamw", "sgd"}),
      kiln::tune::log_uniform("optimizer.adamw.lr", 1e-4, 1e-1).when("optimizer.type", "adamw"),
      kiln::tune::uniform("optimizer.sgd.momentum", 0.0, 0.9, {.step = 0.1}).when("optimizer.type", "sgd"),
      kiln::tune::uniform("optimizer.sgd.lr", 0.01, 0.5).when("optimizer.type", "sgd"),
      kiln::tune::integer("fit.epochs", 1, 9, {.step = 2}),
      kiln::tune::integer("data.batch_size", 16, 256, {.log = true}),
      kiln::tune::categorical("data.scale", {0.5, 1.0, 2}),
      kiln::tune::categorical("data.shuffle", {true, false})};
  CHECK_NOTHROW(space.check(program.config));

  // What each declaration means in Optuna's terms, built by Optuna from the same numbers.
  const nlohmann::json expected = nlohmann::json::array({
      {{"class", "CategoricalDistribution"}, {"kwargs", {{"choices", {"adamw", "sgd"}}}}},
      {{"class", "FloatDistribution"}, {"kwargs", {{"low", 1e-4}, {"high", 1e-1}, {"log", true}}}},
      {{"class", "FloatDistribution"}, {"kwargs", {{"low", 0.0}, {"high", 0.9}, {"step", 0.1}}}},
      {{"class", "FloatDistribution"}, {"kwargs", {{"low", 0.01}, {"high", 0.5}}}},
      {{"class", "IntDistribution"}, {"kwargs", {{"low", 1}, {"high", 9}, {"step", 2}}}},
      {{"class", "IntDistribution"}, {"kwargs", {{"low", 16}, {"high", 256}, {"log", true}}}},
      {{"class", "CategoricalDistribution"}, {"kwargs", {{"choices", {0.5, 1.0, 2}}}}},
      {{"class", "CategoricalDistribution"}, {"kwargs", {{"choices", {true, false}}}}},
  });
  const auto printed = nlohmann::json::parse(space.json());
  CHECK(printed["kiln_search_space"] == 1);
  REQUIRE(printed["params"].size() == expected.size());
  nlohmann::json cases = nlohmann::json::array();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    cases.push_back({{"ours", printed["params"][i]["distribution"].dump()}, {"reference", expected[i]}});
  }
  const auto answers = run_reference("optuna_distributions.py", cases);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(printed["params"][i]["name"], ": ", answers[i]["ours"], " against Optuna's ", answers[i]["reference"]);
    CHECK(answers[i]["equal"] == true);
  }
  CHECK(printed["params"][0].count("when") == 0);
  CHECK(printed["params"][1]["when"] == nlohmann::json{{"optimizer.type", {"adamw"}}});
  CHECK(printed["params"][2]["name"] == "optimizer.sgd.momentum");
}

TEST_CASE("kiln::tune::search_space: a dimension that does not fit the pipeline is an error before any trial") {
  space_fixture program;
  const auto error = [&](kiln::tune::dimension d) {
    return message_of([&] { kiln::tune::search_space{std::move(d)}.check(program.config); });
  };
  CHECK(error(kiln::tune::log_uniform("optimizer.learning_rate", 1e-4, 1e-1)) ==
        "kiln::config: unknown key 'optimizer.learning_rate'; did you mean 'optimizer.adamw.lr' or "
        "'optimizer.sgd.lr'?");
  CHECK(error(kiln::tune::uniform("fit.epochs", 1, 5)) ==
        "kiln::tune::search_space: 'fit.epochs' ranges over numbers (uniform, log_uniform), but the option is not a "
        "floating-point one; use kiln::tune::integer or categorical");
  CHECK(error(kiln::tune::integer("optimizer.sgd.lr", 1, 5)) ==
        "kiln::tune::search_space: 'optimizer.sgd.lr' ranges over integers (kiln::tune::integer), but the option is "
        "not an integer one");
  CHECK(error(kiln::tune::categorical("optimizer.type", {"adamw", "rmsprop"})) ==
        "kiln::config: optimizer.type (from the search space's dimension 'optimizer.type') must be one of \"adamw\", "
        "\"sgd\", got \"rmsprop\"");
  CHECK(error(kiln::tune::categorical("data.batch_size", {16, 32.5})) ==
        "kiln::config: data.batch_size (from the search space's dimension 'data.batch_size') must be an integer "
        "(written without a decimal point or exponent), got 32.5");
  CHECK(error(kiln::tune::log_uniform("optimizer.sgd.lr", 0.0, 0.1)) ==
        "kiln::tune::search_space: 'optimizer.sgd.lr' is log-uniform, so its low bound must be > 0; got 0");
  CHECK(error(kiln::tune::uniform("optimizer.sgd.lr", 0.5, 0.1)) ==
        "kiln::tune::search_space: 'optimizer.sgd.lr' needs finite bounds with low <= high; got [0.5, 0.1]");
  CHECK(error(kiln::tune::integer("data.batch_size", 16, 100, {.step = 16})) ==
        "kiln::tune::search_space: 'data.batch_size' has a step of 16 that does not divide high - low = 84");
  CHECK(error(kiln::tune::categorical("data.shuffle", {})) ==
        "kiln::tune::search_space: 'data.shuffle' has no choices; give at least one");
  CHECK(error(kiln::tune::uniform("optimizer.sgd.momentum", 0, 0.9).when("optimizer.type", "sgd")) ==
        "kiln::tune::search_space: 'optimizer.sgd.momentum' depends on 'optimizer.type', which is not a dimension "
        "declared before it; declare that one first");
  CHECK(message_of([&] {
          kiln::tune::search_space{kiln::tune::categorical("optimizer.type", {"adamw"}),
                                   kiln::tune::uniform("optimizer.sgd.momentum", 0, 0.9).when("optimizer.type", "sgd")}
              .check(program.config);
        }) == "kiln::tune::search_space: 'optimizer.sgd.momentum' depends on 'optimizer.type' being \"sgd\", which is "
              "not one of its choices");
  CHECK(message_of([&] {
          kiln::tune::search_space{kiln::tune::integer("fit.epochs", 1, 3), kiln::tune::integer("fit.epochs", 1, 5)}
              .check(program.config);
        }) == "kiln::tune::search_space: 'fit.epochs' is declared twice; keep one dimension per key");
}

TEST_CASE("kiln::tune::search_space: --print-search-space prints the space and exits before training") {
  const kiln::tune::search_space space{kiln::tune::integer("data.batch_size", 16, 64, {.step = 16}),
                                       kiln::tune::categorical("optimizer.type", {"adamw", "sgd"})};
  const char* args[] = {"prog", "--print-search-space"};
  const auto out = fresh_dir("tune", "print_space") / "space.json";
  std::fflush(stdout);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // no training here: the child only reads keys and checks the space
    try {
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      auto config = kiln::config::from_command_line(2, args);
      (void)config.value("data.batch_size", std::int64_t{32});
      (void)config.value("optimizer.type", std::string{"adamw"});
      space.check(config);
    } catch (...) {
      ::_exit(4);
    }
    ::_exit(3);  // not reached: check() exits
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::ifstream printed(out);
  CHECK(nlohmann::json::parse(printed) == nlohmann::json::parse(space.json()));

  // A program that declares no space is refused at its first fit, not trained.
  auto config = kiln::config::from_command_line(2, args);
  auto t = tunable(config);
  const auto data = make_toy(32);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  CHECK(contains(message_of([&] { t.fit(batches); }),
                 "--print-search-space, but no search space was checked before this fit"));
}

TEST_CASE("kiln::tune::trial_report: under KILN_TRIAL_LOG, the configuration, each epoch's values, the end") {
  const auto dir = fresh_dir("tune", "trial_report");
  const auto path = dir / "trial.jsonl";
  const auto data = make_toy(64);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}}, val{data.x, data.y, {.batch_size = 32}};
  struct sigaction before {};
  ::sigaction(SIGUSR1, nullptr, &before);

  auto config = kiln::config::from_json(R"({"optimizer.type": "sgd"})");
  auto t = tunable(config);
  ::setenv("KILN_TRIAL_LOG", path.c_str(), 1);
  const auto history = t.fit(train, val, {.epochs = 3});
  ::unsetenv("KILN_TRIAL_LOG");
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0]["config"] == nlohmann::json::parse(t.state().hyperparameters));
  CHECK(lines[0]["config"]["fit.epochs"] == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(lines[e + 1]["epoch"] == e + 1);
    for (const auto& [name, value] : history[e]) CHECK(lines[e + 1]["metrics"][name].get<double>() == value);
    CHECK(lines[e + 1]["metrics"].size() == 2);  // train/loss and val/loss: the pipeline lists no metrics
  }
  CHECK(lines[4] == nlohmann::json{{"end", "completed"}});
  struct sigaction after {};
  ::sigaction(SIGUSR1, nullptr, &after);  // still handled: a late prune request must not kill the program
  CHECK(static_cast<bool>(after.sa_handler == kiln::detail::remember_prune_request));
  ::sigaction(SIGUSR1, &before, nullptr);

  // Outside a study it writes nothing and handles no signal.
  std::filesystem::remove(path);
  t.fit(train, val, {.epochs = 1});
  CHECK(!std::filesystem::exists(path));
  ::sigaction(SIGUSR1, nullptr, &after);
  CHECK(static_cast<bool>(after.sa_handler == before.sa_handler));
}
