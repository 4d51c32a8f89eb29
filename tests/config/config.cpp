// kiln::config: values from JSON and the command line, their types, every error, the effective
// configuration, a trainer built with one, and the loggers that save it.
#include "../callbacks/loggers.hpp"

#include <kiln/callbacks/backbone_finetuning.hpp>
#include <kiln/callbacks/checkpoint_on_signal.hpp>
#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/gradient_clipping.hpp>
#include <kiln/callbacks/jsonl_logger.hpp>
#include <kiln/callbacks/lr_monitor.hpp>
#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/callbacks/progress_bar.hpp>
#include <kiln/callbacks/terminate_on_nan.hpp>
#include <kiln/config/config.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace kiln::test;

namespace {

kiln::config from_args(std::vector<const char*> args, const kiln::command_line_options& options = {}) {
  args.insert(args.begin(), "prog");
  return kiln::config::from_command_line(static_cast<int>(args.size()), args.data(), options);
}

/// The message of the kiln::config_error that `f` throws; fails the test when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kiln::config_error& e) {
    return e.what();
  }
  FAIL("no kiln::config_error was thrown");
  return {};
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct float_option {
  float ratio = 0.5f;
  template <class F>
  void each_option(F&& f) {
    f("ratio", ratio);
  }
};

}  // namespace

static_assert(kiln::Configurable<kiln::adamw>);
static_assert(kiln::Configurable<kiln::warmup<kiln::cosine_annealing>>);
static_assert(kiln::Configurable<kiln::early_stopping>);
static_assert(kiln::Configurable<kiln::fit_options>);
static_assert(!kiln::Configurable<kiln::freeze<1>>);

// Every standard callback has options, under "callbacks.<its type's name>".
template <class C>
constexpr bool configurable_as(std::string_view name) {
  return kiln::Configurable<C> && C::config_name == name;
}
static_assert(configurable_as<kiln::early_stopping>("early_stopping"));
static_assert(configurable_as<kiln::clip_grad_norm>("clip_grad_norm"));
static_assert(configurable_as<kiln::clip_grad_value>("clip_grad_value"));
static_assert(configurable_as<kiln::terminate_on_nan>("terminate_on_nan"));
static_assert(configurable_as<kiln::lr_monitor>("lr_monitor"));
static_assert(configurable_as<kiln::progress_bar>("progress_bar"));
static_assert(configurable_as<kiln::csv_logger>("csv_logger"));
static_assert(configurable_as<kiln::jsonl_logger>("jsonl_logger"));
static_assert(configurable_as<kiln::tensorboard_logger>("tensorboard_logger"));
static_assert(configurable_as<kiln::html_report>("html_report"));
static_assert(configurable_as<kiln::model_checkpoint>("model_checkpoint"));
static_assert(configurable_as<kiln::checkpoint_on_signal>("checkpoint_on_signal"));
static_assert(configurable_as<kiln::backbone_finetuning>("backbone_finetuning"));

TEST_CASE("kiln::config sets a policy's options from JSON: nested objects and dotted names are the same keys") {
  for (const char* text : {R"({"optimizer": {"lr": 0.25, "amsgrad": true, "weight_decay": 0}})",
                           R"({"optimizer.lr": 0.25, "optimizer": {"amsgrad": true}, "optimizer.weight_decay": 0})",
                           R"({"optimizer": {"lr": 0.25, /* a comment */ "amsgrad": true,
                               "weight_decay": 0}}  // comments are allowed)"}) {
    CAPTURE(text);
    auto cfg = kiln::config::from_json(text);
    kiln::adamw opt{.lr = 1e-3, .beta1 = 0.8};
    cfg.apply("optimizer", opt);
    CHECK(opt.lr == 0.25);
    CHECK(opt.amsgrad);
    CHECK(opt.weight_decay == 0.0);  // an integer is a fine number
    CHECK(opt.beta1 == 0.8);         // not given: as written in the code
    CHECK(opt.beta2 == 0.999);
    CHECK_NOTHROW(cfg.check_all_used());
  }
}

TEST_CASE("kiln::config reads every option type, from JSON and from --set text") {
  const std::string json = R"({"scheduler": {"monitor": "val/accuracy", "mode": "max", "factor": 0.5, "patience": 3,
                                "threshold_mode": "abs", "min_lr": [1e-5, 0], "cooldown": 1},
                                "milestones": {"milestones": [3, 7], "interval": "step"},
                                "callbacks.progress_bar.width": 40,
                                "callbacks.clip_grad_norm": {"norm_type": "inf"},
                                "callbacks.csv_logger.path": "run/log.csv"})";
  auto from_file = kiln::config::from_json(json);
  kiln::config from_text;
  from_text.set("scheduler.monitor", "val/accuracy");
  from_text.set("scheduler.mode", "max");
  from_text.set("scheduler.factor", "5e-1");
  from_text.set("scheduler.patience", "+3");
  from_text.set("scheduler.threshold_mode", "abs");
  from_text.set("scheduler.min_lr", "[1e-5, 0]");
  from_text.set("scheduler.cooldown", "1");
  from_text.set("milestones.milestones", "3,7");
  from_text.set("milestones.interval", "step");
  from_text.set("callbacks.progress_bar.width", "40");
  from_text.set("callbacks.clip_grad_norm.norm_type", "inf");
  from_text.set("callbacks.csv_logger.path", "run/log.csv");

  for (auto* cfg : {&from_file, &from_text}) {
    kiln::reduce_on_plateau<> plateau;
    kiln::multi_step_lr steps;
    kiln::callbacks list{kiln::progress_bar{}, kiln::clip_grad_norm{}, kiln::csv_logger{}};
    cfg->apply("scheduler", plateau);
    cfg->apply("milestones", steps);
    cfg->apply("callbacks", list);
    CHECK_NOTHROW(cfg->check_all_used());
    CHECK(plateau.monitor == "val/accuracy");
    CHECK(plateau.mode == kiln::monitor_mode::max);
    CHECK(plateau.factor == 0.5);
    CHECK(plateau.patience == 3);
    CHECK(plateau.threshold_mode == kiln::threshold_mode::abs);
    CHECK(plateau.min_lr == std::vector<double>{1e-5, 0.0});
    CHECK(plateau.cooldown == 1);
    CHECK(steps.milestones == std::vector<std::int64_t>{3, 7});
    CHECK(steps.interval == kiln::interval::step);
    CHECK(list.get<kiln::progress_bar>().width == 40);
    CHECK(list.get<kiln::clip_grad_norm>().norm_type == std::numeric_limits<double>::infinity());
    CHECK(list.get<kiln::csv_logger>().path == std::filesystem::path{"run/log.csv"});
  }
}

TEST_CASE("kiln::config: --set overrides every --config file, and a later file overrides an earlier one") {
  const scratch_directory dir{"config_precedence"};
  write_text(dir.path / "a.json", R"({"optimizer": {"lr": 0.1, "momentum": 0.5, "dampening": 0.25}})");
  write_text(dir.path / "b.json", R"({"optimizer": {"momentum": 0.75, "weight_decay": 0.125}})");
  const auto a = (dir.path / "a.json").string(), b = (dir.path / "b.json").string();
  // The --set comes first on the command line and still wins; so does the last of two --set.
  auto cfg = from_args({"--set", "optimizer.lr=0.5", "--config", a.c_str(), "--config", b.c_str(), "--set",
                        "optimizer.weight_decay=0.01", "--set=optimizer.weight_decay=0.02"});
  kiln::sgd opt;
  cfg.apply("optimizer", opt);
  CHECK(opt.lr == 0.5);               // --set over a.json
  CHECK(opt.momentum == 0.75);        // b.json over a.json
  CHECK(opt.dampening == 0.25);       // a.json alone
  CHECK(opt.weight_decay == 0.02);    // the last --set over the first, over b.json
  CHECK(opt.nesterov == false);       // nobody: the code's value
  CHECK(cfg.contains("optimizer.lr"));
  CHECK_FALSE(cfg.contains("optimizer.nesterov"));
}

TEST_CASE("kiln::config reads the program's own keys with value(), and positional arguments") {
  auto cfg = from_args({"data/mnist", "--set", "data.batch_size=128", "--set", "data.classes=[5, 6,7]", "--set",
                        "run.name=baseline"},
                       {.description = "test", .positional = {"data-dir", "output-dir"}});
  CHECK(cfg.positional() == std::vector<std::string>{"data/mnist"});
  CHECK(cfg.value("data.batch_size", std::int64_t{32}) == 128);
  CHECK(cfg.value("data.classes", std::vector<int>{}) == std::vector<int>{5, 6, 7});
  CHECK(cfg.value("run.name", "default") == "baseline");
  CHECK(cfg.value("data.shuffle", true) == true);          // not given: the fallback
  CHECK(cfg.value("data.seed", std::uint64_t{7}) == 7u);
  CHECK_NOTHROW(cfg.check_all_used());
  const auto effective = nlohmann::json::parse(cfg.effective_json());
  CHECK(effective["data.batch_size"] == 128);
  CHECK(effective["data.shuffle"] == true);
  CHECK(effective["run.name"] == "baseline");

  CHECK(from_args({"a", "b"}, {.positional = {"data-dir", "output-dir"}}).positional() ==
        std::vector<std::string>{"a", "b"});
  CHECK(error_of([] { from_args({"a", "b", "c"}, {.positional = {"data-dir", "output-dir"}}); }) ==
        "kiln::config: unexpected argument 'c'; prog takes at most 2 (data-dir, output-dir); run 'prog --help' for "
        "the usage");
  CHECK(error_of([] { from_args({"stray"}); }) ==
        "kiln::config: unexpected argument 'stray'; prog takes no positional arguments; run 'prog --help' for the "
        "usage");

  // "--name=value" is "--name value"; after "--" every word is positional, even one that begins with '-'.
  auto joined =
      from_args({"--set=data.batch_size=16", "--", "-odd-dir", "--set"}, {.positional = {"data-dir", "output-dir"}});
  CHECK(joined.positional() == std::vector<std::string>{"-odd-dir", "--set"});
  CHECK(joined.value("data.batch_size", std::int64_t{32}) == 16);
  CHECK(from_args({"-"}, {.positional = {"data-dir"}}).positional() == std::vector<std::string>{"-"});
}

TEST_CASE("kiln::config: a key that nothing reads is an error that names it, its origin and the nearest keys") {
  const auto unknown = [](const char* key, const char* value) {
    kiln::config cfg;
    cfg.set(key, value, "--set");
    kiln::adamw opt;
    kiln::step_lr steps;
    kiln::callbacks list{kiln::early_stopping{}};
    cfg.value("data.batch_size", 32);
    cfg.apply("optimizer", opt);
    cfg.apply("scheduler", steps);
    cfg.apply("callbacks", list);
    return error_of([&] { cfg.check_all_used(); });
  };
  CHECK(unknown("optimizer.learning_rate", "0.1") ==
        "kiln::config: unknown key 'optimizer.learning_rate' (from --set); did you mean 'optimizer.lr'?");
  CHECK(unknown("optimizer.weight_decy", "0.1") ==
        "kiln::config: unknown key 'optimizer.weight_decy' (from --set); did you mean 'optimizer.weight_decay'?");
  CHECK(unknown("optimiser.lr", "0.1") ==
        "kiln::config: unknown key 'optimiser.lr' (from --set); did you mean 'optimizer.lr'?");
  CHECK(unknown("callbacks.early_stopping.patiance", "2") ==
        "kiln::config: unknown key 'callbacks.early_stopping.patiance' (from --set); did you mean "
        "'callbacks.early_stopping.patience'?");
  CHECK(unknown("scheduler", "3") ==
        "kiln::config: unknown key 'scheduler' (from --set); 'scheduler' is a section, not a value: give one of its "
        "keys (scheduler.step_size, scheduler.gamma, scheduler.interval)");
  CHECK(unknown("scheduler.warmup_steps", "3") ==
        "kiln::config: unknown key 'scheduler.warmup_steps' (from --set); the keys of 'scheduler' are step_size, "
        "gamma, interval");
  CHECK(contains(unknown("model.depth", "3"),
                 "kiln::config: unknown key 'model.depth' (from --set); the known sections are data, optimizer, "
                 "scheduler, callbacks.early_stopping (keys of your own are read with config.value(key, default) "
                 "before the kiln::trainer is built)"));

  // Every unknown key at once, each with where it came from.
  auto cfg = kiln::config::from_json(R"({"optimizer": {"lr": 0.1, "lrr": 0.2}, "extra": 1})", "file 'run.json'");
  cfg.set("optimizer.betta1", "0.8", "--set");
  kiln::adam opt;
  cfg.apply("optimizer", opt);
  CHECK(error_of([&] { cfg.check_all_used(); }) ==
        "kiln::config: unknown key 'extra' (from file 'run.json'); the known sections are optimizer (keys of your "
        "own are read with config.value(key, default) before the kiln::trainer is built)\n"
        "kiln::config: unknown key 'optimizer.betta1' (from --set); did you mean 'optimizer.beta1'?\n"
        "kiln::config: unknown key 'optimizer.lrr' (from file 'run.json'); did you mean 'optimizer.lr'?");
}

TEST_CASE("kiln::config: a value of the wrong type is an error that says what the option takes") {
  const auto json_error = [](const std::string& text) {
    auto cfg = kiln::config::from_json(text, "file 'run.json'");
    kiln::reduce_on_plateau<> plateau;
    kiln::callbacks list{kiln::progress_bar{}, kiln::csv_logger{}};
    return error_of([&] {
      cfg.apply("scheduler", plateau);
      cfg.apply("callbacks", list);
    });
  };
  CHECK(json_error(R"({"scheduler": {"factor": "0.5"}})") ==
        R"(kiln::config: scheduler.factor (from file 'run.json') must be a number (or "inf", "-inf"), got "0.5")");
  CHECK(json_error(R"({"scheduler": {"patience": 3.5}})") ==
        "kiln::config: scheduler.patience (from file 'run.json') must be an integer (written without a decimal "
        "point or exponent), got 3.5");
  CHECK(json_error(R"({"scheduler": {"patience": 3.0}})") ==
        "kiln::config: scheduler.patience (from file 'run.json') must be an integer (written without a decimal "
        "point or exponent), got 3.0");
  CHECK(json_error(R"({"scheduler": {"patience": "3"}})") ==
        R"(kiln::config: scheduler.patience (from file 'run.json') must be an integer, got "3")");
  CHECK(json_error(R"({"scheduler": {"mode": "maximum"}})") ==
        R"(kiln::config: scheduler.mode (from file 'run.json') must be one of "min", "max", got "maximum")");
  CHECK(json_error(R"({"scheduler": {"mode": 1}})") ==
        R"(kiln::config: scheduler.mode (from file 'run.json') must be one of "min", "max", got 1)");
  CHECK(json_error(R"({"scheduler": {"monitor": 3}})") ==
        "kiln::config: scheduler.monitor (from file 'run.json') must be a string, got 3");
  CHECK(json_error(R"({"scheduler": {"min_lr": 0.1}})") ==
        "kiln::config: scheduler.min_lr (from file 'run.json') must be a list of values, each a number, got 0.1");
  CHECK(json_error(R"({"scheduler": {"min_lr": [0.1, true]}})") ==
        R"(kiln::config: scheduler.min_lr[1] (from file 'run.json') must be a number (or "inf", "-inf"), got true)");
  CHECK(json_error(R"({"scheduler": {"factor": null}})") ==
        R"(kiln::config: scheduler.factor (from file 'run.json') must be a number (or "inf", "-inf"), got null)");
  CHECK(json_error(R"({"scheduler": {"factor": {}}})") ==
        R"(kiln::config: scheduler.factor (from file 'run.json') must be a number (or "inf", "-inf"), got {})");
  CHECK(json_error(R"({"callbacks": {"csv_logger": {"append": 1}}})") ==
        "kiln::config: callbacks.csv_logger.append (from file 'run.json') must be true or false, got 1");
  CHECK(json_error(R"({"callbacks": {"progress_bar": {"width": 3000000000}}})") ==
        "kiln::config: callbacks.progress_bar.width (from file 'run.json') must be an integer from -2147483648 to "
        "2147483647, got 3000000000");
  CHECK(json_error(R"({"callbacks": {"csv_logger": {"path": ["a"]}}})") ==
        R"(kiln::config: callbacks.csv_logger.path (from file 'run.json') must be a path (a string), got ["a"])");

  const auto text_error = [](const char* key, const char* value) {
    kiln::config cfg;
    cfg.set(key, value, "--set");
    kiln::reduce_on_plateau<> plateau;
    kiln::callbacks list{kiln::progress_bar{}, kiln::early_stopping{}};
    return error_of([&] {
      cfg.apply("scheduler", plateau);
      cfg.apply("callbacks", list);
    });
  };
  CHECK(text_error("scheduler.factor", "abc") == "kiln::config: scheduler.factor (from --set) must be a number, got 'abc'");
  CHECK(text_error("scheduler.factor", "0.5x") == "kiln::config: scheduler.factor (from --set) must be a number, got '0.5x'");
  CHECK(text_error("scheduler.factor", "") == "kiln::config: scheduler.factor (from --set) must be a number, got ''");
  CHECK(text_error("scheduler.factor", "nan") ==
        "kiln::config: scheduler.factor (from --set) must be a number (NaN is not one), got 'nan'");
  CHECK(text_error("scheduler.patience", "3.0") == "kiln::config: scheduler.patience (from --set) must be an integer, got '3.0'");
  CHECK(text_error("scheduler.patience", "1e3") == "kiln::config: scheduler.patience (from --set) must be an integer, got '1e3'");
  CHECK(text_error("scheduler.patience", "99999999999999999999") ==
        "kiln::config: scheduler.patience (from --set) must be an integer from -9223372036854775808 to "
        "9223372036854775807, got '99999999999999999999'");
  CHECK(text_error("scheduler.mode", "MAX") ==
        R"(kiln::config: scheduler.mode (from --set) must be one of "min", "max", got 'MAX')");
  CHECK(text_error("scheduler.min_lr", "[0.1, x]") ==
        "kiln::config: scheduler.min_lr[1] (from --set) must be a number, got 'x'");
  CHECK(text_error("callbacks.early_stopping.restore_best_weights", "yes") ==
        "kiln::config: callbacks.early_stopping.restore_best_weights (from --set) must be true or false, got 'yes'");
  CHECK(text_error("callbacks.early_stopping.mode", "maximize") ==
        R"(kiln::config: callbacks.early_stopping.mode (from --set) must be one of "min", "max", got 'maximize')");
}

TEST_CASE("kiln::config: a float option refuses a number a float cannot hold") {
  float_option o;
  auto fits = kiln::config::from_json(R"({"ratio": 3e38})");
  fits.apply("", o);
  CHECK(o.ratio == 3e38f);
  CHECK(error_of([&] { kiln::config::from_json(R"({"ratio": 1e39})").apply("", o); }) ==
        "kiln::config: ratio (from JSON text) must be a number from -3.40282e+38 to 3.40282e+38, got 1e+39");
  kiln::config text;
  text.set("ratio", "-1e39", "--set");
  CHECK(error_of([&] { text.apply("", o); }) ==
        "kiln::config: ratio (from --set) must be a number from -3.40282e+38 to 3.40282e+38, got '-1e39'");
  CHECK(o.ratio == 3e38f);
}

TEST_CASE("kiln::config: a value the policy rejects is an error that names the key that set it") {
  kiln::config cfg;
  cfg.set("optimizer.lr", "-1", "--set");
  kiln::adamw opt;
  CHECK(error_of([&] { cfg.apply("optimizer", opt); }) ==
        "kiln::adamw: lr must be a finite number >= 0, got -1 (the configuration set optimizer.lr = -1.0 from --set)");
  // A policy that is already wrong in the code is reported as it always is.
  kiln::config empty;
  kiln::sgd bad{.lr = -2};
  CHECK_THROWS_WITH_AS(empty.apply("optimizer", bad), "kiln::sgd: lr must be a finite number >= 0, got -2",
                       std::invalid_argument);
}

TEST_CASE("kiln::config: a file that cannot be read or parsed, and a bad command line, are errors that say where") {
  const scratch_directory dir{"config_errors"};
  const auto broken = dir.path / "broken.json";
  write_text(broken, "{\n  \"optimizer\": {\n    \"lr\": 0.1,\n  }\n}\n");
  const auto message = error_of([&] { kiln::config::from_json_file(broken); });
  CHECK(message.starts_with("kiln::config: file '" + broken.string() + "' is not valid JSON: parse error at line 4, column 3:"));
  CHECK(contains(message, "unexpected '}'"));

  CHECK(error_of([] { kiln::config::from_json(R"({"optimizer": {"lr": 1e400}})"); }) ==
        "kiln::config: JSON text is not valid JSON: number overflow parsing '1e400'");
  CHECK(error_of([] { kiln::config::from_json("[1, 2]"); }) ==
        R"(kiln::config: JSON text must hold a JSON object such as {"optimizer": {"lr": 0.001}}, not array)");
  CHECK(error_of([] { kiln::config::from_json(R"({"optimizer": {"lr": 1}, "optimizer.lr": 2})"); }) ==
        "kiln::config: JSON text gives 'optimizer.lr' twice (as a nested object and as a dotted name); keep one");
  CHECK(error_of([] { kiln::config::from_json(R"({"my key": 1})"); }) ==
        "kiln::config: 'my key' (from JSON text) is not a key; a key is names of letters, digits, '_' and '-' joined "
        "by '.', such as optimizer.lr");

  const auto missing = dir.path / "missing.json";
  CHECK(error_of([&] { from_args({"--config", missing.c_str()}); }) ==
        "kiln::config: cannot open the configuration file '" + missing.string() +
            "': No such file or directory; check the path given to --config");
  CHECK(error_of([&] { from_args({"--config", dir.path.c_str()}); }) ==
        "kiln::config: '" + dir.path.string() + "' is a directory, not a configuration file");

  CHECK(error_of([] { from_args({"--set", "optimizer.lr"}); }) ==
        "kiln::config: --set expects KEY=VALUE, such as --set optimizer.lr=0.001; got 'optimizer.lr'");
  CHECK(error_of([] { from_args({"--set", "=0.1"}); }) ==
        "kiln::config: '' (from --set) is not a key; a key is names of letters, digits, '_' and '-' joined by '.', "
        "such as optimizer.lr");
  CHECK(contains(error_of([] { from_args({"--set", "optimizer..lr=0.1"}); }), "'optimizer..lr' (from --set) is not a key"));
  CHECK(error_of([] { from_args({"--set"}); }) ==
        "kiln::config: --set needs a value (KEY=VALUE); run 'prog --help' for the usage");
  CHECK(error_of([] { from_args({"--set", "optimizer.lr=0.1", "--config"}); }) ==
        "kiln::config: --config needs a value (FILE); run 'prog --help' for the usage");
  CHECK(error_of([] { from_args({"--sett", "optimizer.lr=0.1"}); }) ==
        "kiln::config: unknown option '--sett'; the options are --config FILE, --set KEY=VALUE, --print-search-space and --help; run 'prog "
        "--help' for the usage");
  CHECK(error_of([] { from_args({"-s=1"}); }) ==
        "kiln::config: unknown option '-s'; the options are --config FILE, --set KEY=VALUE, --print-search-space and --help; run 'prog "
        "--help' for the usage");
}

TEST_CASE("kiln::config: --help prints the usage and exits with status 0") {
  const auto usage = kiln::config::usage("mnist_transfer", {.description = "Fine-tunes a CNN.", .positional = {"data-dir"}});
  CHECK(usage.starts_with("Fine-tunes a CNN.\nUsage: mnist_transfer [OPTIONS] [data-dir]"));
  CHECK(kiln::config::usage("prog").starts_with("Usage: prog [OPTIONS]\n"));
  CHECK(contains(usage, "--config FILE"));
  CHECK(contains(usage, "--set KEY=VALUE"));
  CHECK(contains(usage, "Keys: backbone.*, loss.*, optimizer.*, scheduler.*, fit.*, callbacks.<name>.*"));

  const scratch_directory dir{"config_help"};
  const auto out = dir.path / "help.txt";
  std::fflush(stdout);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    // --help wins over anything else on the line, even a word that would be an error.
    const char* args[] = {"mnist_transfer", "--set", "optimizer.lr=1", "--unknown", "--help"};
    kiln::config::from_command_line(5, args, {.description = "Fine-tunes a CNN.", .positional = {"data-dir"}});
    ::_exit(3);  // not reached when --help exits
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_file(out) == usage);
}

namespace {

// Every option of these policies, compared after a round trip through the effective configuration.
struct round_trip_pipeline {
  kiln::backbone<Mlp> backbone{};
  kiln::sigmoid_focal_loss loss{};
  kiln::rmsprop optimizer{};
  kiln::warmup<kiln::reduce_on_plateau<>> scheduler{};
  kiln::callbacks<kiln::early_stopping, kiln::clip_grad_norm, kiln::csv_logger, kiln::csv_logger> callbacks{
      kiln::early_stopping{}, kiln::clip_grad_norm{}, kiln::csv_logger{}, kiln::csv_logger{}};

  void apply(kiln::config& cfg) {
    cfg.value("data.batch_size", 16);
    cfg.apply("backbone", backbone);
    cfg.apply("loss", loss);
    cfg.apply("optimizer", optimizer);
    cfg.apply("scheduler", scheduler);
    cfg.apply("callbacks", callbacks);
  }
};

}  // namespace

TEST_CASE("kiln::config: the effective configuration holds every option and reads back to the same values") {
  auto cfg = from_args({"--set", "backbone.weights=w.pt",
                        "--set", "backbone.lr_ratio=0.1",
                        "--set", "loss.alpha=-1",
                        "--set", "loss.reduction=sum",
                        "--set", "optimizer.lr=0.1234567890123",
                        "--set", "optimizer.centered=true",
                        "--set", "scheduler.length=7",
                        "--set", "scheduler.then.min_lr=1e-6,2e-6",
                        "--set", "scheduler.then.mode=max",
                        "--set", "scheduler.then.monitor=val/accuracy",
                        "--set", "callbacks.early_stopping.patience=9",
                        "--set", "callbacks.clip_grad_norm.norm_type=-inf",
                        "--set", "callbacks.csv_logger.path=a.csv",
                        "--set", "callbacks.csv_logger_2.path=b.csv",
                        "--set", "data.batch_size=64"});
  round_trip_pipeline first;
  first.apply(cfg);
  REQUIRE_NOTHROW(cfg.check_all_used());
  CHECK(first.backbone.weights == "w.pt");
  CHECK(first.loss.reduction == kiln::reduction::sum);
  CHECK(first.scheduler.then.min_lr == std::vector<double>{1e-6, 2e-6});
  CHECK(first.callbacks.get<2>().path == "a.csv");
  CHECK(first.callbacks.get<3>().path == "b.csv");

  const std::string effective = cfg.effective_json();
  const auto parsed = nlohmann::ordered_json::parse(effective);
  CHECK(parsed.size() == 1 + 2 + 3 + 6 + 11 + 6 + 2 + 2 + 2);
  CHECK(parsed.begin().key() == "data.batch_size");  // in the order read
  CHECK(parsed["loss.reduction"] == "sum");
  CHECK(parsed["scheduler.then.threshold_mode"] == "rel");  // defaults included
  CHECK(parsed["callbacks.clip_grad_norm.norm_type"] == "-inf");
  CHECK(parsed["optimizer.lr"].get<double>() == 0.1234567890123);
  for (std::size_t i = 0; i < effective.size(); ++i) {
    if (effective[i] == '\n') CHECK((effective.compare(i + 1, 3, "  \"") == 0 || effective.compare(i + 1, 1, "}") == 0));
  }

  // Fed back as a file: the same values, and the same effective configuration.
  auto again = kiln::config::from_json(effective);
  round_trip_pipeline second;
  second.apply(again);
  REQUIRE_NOTHROW(again.check_all_used());
  CHECK(again.effective_json() == effective);
  const auto same = [](auto& a, auto& b) {
    std::vector<std::string> names;
    a.each_option([&](std::string_view name, auto&) { names.emplace_back(name); });
    std::size_t i = 0;
    b.each_option([&](std::string_view, auto& value_b) {
      std::size_t j = 0;
      a.each_option([&](std::string_view, auto& value_a) {
        if constexpr (std::is_same_v<decltype(value_a), decltype(value_b)> && !kiln::Configurable<std::remove_cvref_t<decltype(value_a)>>) {
          if (j == i) CHECK_MESSAGE(value_a == value_b, names[i]);
        }
        ++j;
      });
      ++i;
    });
    return i == names.size();
  };
  CHECK(same(first.backbone, second.backbone));
  CHECK(same(first.loss, second.loss));
  CHECK(same(first.optimizer, second.optimizer));
  CHECK(same(first.scheduler.then, second.scheduler.then));
  CHECK(first.scheduler.length == second.scheduler.length);
  CHECK(same(first.callbacks.get<0>(), second.callbacks.get<0>()));
  CHECK(same(first.callbacks.get<1>(), second.callbacks.get<1>()));
  CHECK(same(first.callbacks.get<3>(), second.callbacks.get<3>()));
  CHECK(again.value("data.batch_size", 0) == 64);

  CHECK(kiln::config{}.effective_json() == "{}");
}

TEST_CASE("the effective configuration reads back as rows of a table without a JSON library") {
  auto cfg = kiln::config::from_json(R"({"run": {"name": "a \"quoted\" name", "tag": "plain"}})");
  cfg.value("run.name", "");
  cfg.value("run.tag", "");
  cfg.value("run.sizes", std::vector<int>{1, 2});
  const auto rows = kiln::detail::configuration_rows(cfg.effective_json());
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == std::pair<std::string, std::string>{"run.name", R"("a \"quoted\" name")"});
  CHECK(rows[1] == std::pair<std::string, std::string>{"run.tag", "plain"});
  CHECK(rows[2] == std::pair<std::string, std::string>{"run.sizes", "[1,2]"});
  CHECK(kiln::detail::configuration_rows("").empty());
  CHECK(kiln::detail::configuration_rows(R"({"a":1})") ==
        std::vector<std::pair<std::string, std::string>>{{"configuration", R"({"a":1})"}});
}

TEST_CASE("a trainer built with a kiln::config trains with the configured options, defaults and epochs") {
  torch::manual_seed(0);
  auto data = make_toy(64, 3);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  auto cfg = from_args({"--set", "optimizer.lr=0.05", "--set", "backbone.lr_ratio=0.5", "--set", "fit.epochs=2",
                        "--set", "loss.label_smoothing=0.25", "--set", "callbacks.early_stopping.patience=7",
                        "--set", "scheduler.gamma=0.5"});
  kiln::trainer t{cfg, kiln::backbone<Mlp>{}, kiln::head{torch::nn::Linear(3, 3)}, kiln::step_lr{.gamma = 0.1},
                  kiln::callbacks{kiln::early_stopping{.patience = 2}}};
  static_assert(std::is_same_v<decltype(t), kiln::trainer<kiln::backbone<Mlp>, kiln::head<torch::nn::Linear>,
                                                          kiln::step_lr, kiln::callbacks<kiln::early_stopping>>>);
  // The optimizer is the default kiln::adam, configured all the same.
  auto& groups = t.optimizer().param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].options().get_lr() == 0.025);
  CHECK(groups[1].options().get_lr() == 0.05);
  CHECK(t.callback_list().get<kiln::early_stopping>().patience == 7);
  CHECK(t.scheduler().policy().gamma == 0.5);

  const auto before = nlohmann::json::parse(t.state().hyperparameters);
  CHECK(before["optimizer.lr"] == 0.05);
  CHECK(before["loss.label_smoothing"] == 0.25);
  CHECK(before["optimizer.beta2"] == 0.999);
  CHECK_FALSE(before.contains("fit.epochs"));  // a fit's own, recorded when it runs

  const auto history = t.fit(batches, batches, {.epochs = 5});
  CHECK(history.size() == 2);  // fit.epochs over the argument
  CHECK(nlohmann::json::parse(t.state().hyperparameters)["fit.epochs"] == 2);
  CHECK(groups[1].options().get_lr() == doctest::Approx(0.05 * 0.5 * 0.5).epsilon(1e-15));

  // A configuration made on the spot will do as well.
  kiln::trainer v{kiln::config::from_json(R"({"optimizer": {"lr": 0.5}})"), kiln::backbone<Mlp>{}, kiln::sgd{}};
  static_assert(std::is_same_v<decltype(v), kiln::trainer<kiln::backbone<Mlp>, kiln::sgd>>);
  CHECK(v.optimizer().param_groups()[0].options().get_lr() == 0.5);

  // Without fit.epochs the argument stands, and is what the configuration records.
  kiln::config plain;
  kiln::trainer u{plain, kiln::backbone<Mlp>{}};
  CHECK(u.fit(batches, {.epochs = 3}).size() == 3);
  CHECK(nlohmann::json::parse(u.state().hyperparameters)["fit.epochs"] == 3);

  // fit.resume_from continues a checkpoint: the first epoch is the saved run's, not a fresh one.
  const scratch_directory dir{"config_resume"};
  u.save_checkpoint(dir.path / "u.pt");
  const auto resume = (dir.path / "u.pt").string();
  auto resuming = from_args({"--set", ("fit.resume_from=" + resume).c_str(), "--set", "fit.epochs=4"});
  kiln::trainer w{resuming, kiln::backbone<Mlp>{}};
  const auto resumed = w.fit(batches, {.epochs = 9});
  REQUIRE(resumed.size() == 4);
  CHECK(resumed[2].at("train/loss") == u.state().metrics.at("train/loss"));  // the checkpoint's last epoch
  CHECK(nlohmann::json::parse(w.state().hyperparameters)["fit.resume_from"] == resume);
}

TEST_CASE("a trainer built with a kiln::config rejects unknown keys and bad values before it trains") {
  auto typo = from_args({"--set", "optimizer.learning_rate=0.1"});
  CHECK_THROWS_WITH_AS((kiln::trainer{typo, kiln::backbone<Mlp>{}, kiln::sgd{}}),
                       "kiln::config: unknown key 'optimizer.learning_rate' (from --set); did you mean 'optimizer.lr'?",
                       kiln::config_error);
  auto zero = from_args({"--set", "fit.epochs=0"});
  CHECK_THROWS_WITH_AS((kiln::trainer{zero, kiln::backbone<Mlp>{}}),
                       "kiln::fit: epochs must be at least 1, got 0 (the configuration set fit.epochs = 0 from --set)",
                       kiln::config_error);
  // A user key read after the trainer was built is too late.
  auto late = from_args({"--set", "data.batch_size=8"});
  CHECK_THROWS_AS((kiln::trainer{late, kiln::backbone<Mlp>{}}), kiln::config_error);
  late.value("data.batch_size", 16);
  CHECK_NOTHROW(kiln::trainer{late, kiln::backbone<Mlp>{}});
}

TEST_CASE("the loggers save the effective configuration of a trainer built with a kiln::config") {
  const scratch_directory dir{"config_loggers"};
  torch::manual_seed(0);
  auto data = make_toy(64, 3);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  auto cfg = from_args({"--set", "optimizer.lr=0.0625", "--set", "callbacks.html_report.title=configured run"});
  kiln::trainer t{cfg, kiln::backbone<Mlp>{}, kiln::sgd{},
                  kiln::callbacks{kiln::jsonl_logger{.path = dir.path / "log.jsonl"},
                                  kiln::csv_logger{.path = dir.path / "log.csv"},
                                  kiln::tensorboard_logger{.log_dir = dir.path / "tb", .hyperparameters = {{"note", "by hand"}}},
                                  kiln::html_report{.path = dir.path / "report.html",
                                                    .hyperparameters = {{"note", "by hand"}}}}};
  t.fit(batches, batches, {.epochs = 2});
  const std::string& effective = t.state().hyperparameters;
  REQUIRE(contains(effective, "\"optimizer.lr\": 0.0625"));

  // JSON lines: the configuration first, then one line per epoch.
  const auto lines = read_lines(dir.path / "log.jsonl");
  REQUIRE(lines.size() == 3);
  const auto first = nlohmann::ordered_json::parse(lines[0]);
  CHECK(first["hyperparameters"] == nlohmann::ordered_json::parse(effective));
  CHECK(first["hyperparameters"]["fit.epochs"] == 2);
  CHECK(nlohmann::json::parse(lines[1])["epoch"] == 0);

  // CSV: the table unchanged, the configuration beside it.
  CHECK(read_lines(dir.path / "log.csv").size() == 3);
  CHECK(read_file(dir.path / "log.csv.config.json") == effective + "\n");

  // TensorBoard: the text summary "hyperparameters" holds the given rows and the configuration's.
  std::filesystem::path event_file;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path / "tb")) event_file = entry.path();
  const auto events = read_file(event_file);
  CHECK(contains(events, "| note | by hand |"));
  CHECK(contains(events, "| optimizer.lr | 0.0625 |"));
  CHECK(contains(events, "| callbacks.csv_logger.path | " + (dir.path / "log.csv").string() + " |"));

  // HTML: the hyperparameters table, and the configured title.
  const auto html = read_file(dir.path / "report.html");
  CHECK(contains(html, "<title>configured run</title>"));
  CHECK(contains(html, "<tr><th>note</th><td>by hand</td></tr>"));
  CHECK(contains(html, "<tr><th>optimizer.lr</th><td>0.0625</td></tr>"));
  CHECK(contains(html, "<tr><th>fit.epochs</th><td>2</td></tr>"));
}
