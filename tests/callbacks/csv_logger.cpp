#include "loggers.hpp"

#include <kiln/callbacks/csv_logger.hpp>

#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace kiln::test;

static_assert(kiln::Callback<kiln::csv_logger>);

TEST_CASE("kiln::csv_logger writes a header and one row per epoch of a fit, numbers exact") {
  const scratch_directory dir{"csv_fit"};
  const auto path = dir.path / "run" / "metrics.csv";  // "run" does not exist yet
  const auto history = short_fit(kiln::csv_logger{.path = path});

  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 1 + epochs);
  std::vector<std::string> names;
  for (const auto& [name, value] : history[0]) names.push_back(name);
  CHECK(names == std::vector<std::string>{"train/loss", "val/loss", "val/accuracy"});
  std::string header = "epoch,step";
  for (const auto& name : names) header += "," + name;
  CHECK(lines[0] == header + ",lr/group_0,lr/group_1");

  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    CAPTURE(epoch);
    const auto cells = kiln::detail::split_csv_line(lines[static_cast<std::size_t>(epoch) + 1]);
    REQUIRE(cells.size() == 2 + names.size() + 2);
    CHECK(cells[0] == std::to_string(epoch));
    CHECK(cells[1] == std::to_string(steps_per_epoch * (epoch + 1)));
    for (std::size_t i = 0; i < names.size(); ++i) {
      CHECK(std::stod(cells[2 + i]) == history[static_cast<std::size_t>(epoch)].at(names[i]));  // bit for bit
    }
    // The rates the epoch trained with: the scheduler halves them after each epoch.
    CHECK(std::stod(cells[2 + names.size()]) == doctest::Approx(backbone_lr(epoch)).epsilon(1e-12));
    CHECK(std::stod(cells[3 + names.size()]) == doctest::Approx(head_lr(epoch)).epsilon(1e-12));
  }
}

TEST_CASE("kiln::csv_logger widens the file when a name appears later; every state on disk is whole") {
  const scratch_directory dir{"csv_widen"};
  const auto path = dir.path / "metrics.csv";
  kiln::csv_logger logger{.path = path};
  manual_context m;
  m.ctx.learning_rates = {0.1};
  logger.on_fit_begin(m.ctx);

  m.ctx.metrics.set("train/loss", 0.5);
  logger.on_epoch_begin(m.ctx);
  logger.on_epoch_end(m.ctx);
  CHECK(read_file(path) == "epoch,step,train/loss,lr/group_0\n0,0,0.5,0.1\n");

  m.ctx.epoch = 1, m.ctx.step = 5;
  m.ctx.metrics.set("train/loss", 0.25);
  m.ctx.metrics.set("val/confusion_matrix[0,1]", 7);  // a comma in a name: the header quotes it
  logger.on_epoch_begin(m.ctx);
  logger.on_epoch_end(m.ctx);
  CHECK(read_file(path) ==
        "epoch,step,train/loss,lr/group_0,\"val/confusion_matrix[0,1]\"\n0,0,0.5,0.1,\n1,5,0.25,0.1,7\n");
  CHECK(kiln::detail::split_csv_line("epoch,step,\"val/confusion_matrix[0,1]\"")[2] == "val/confusion_matrix[0,1]");

  manual_context other;  // an epoch without train/loss, and a value that is not a number
  other.ctx.epoch = 2, other.ctx.step = 9;
  other.ctx.learning_rates = {0.05};
  other.ctx.metrics.set("val/confusion_matrix[0,1]", std::nan(""));
  logger.on_epoch_begin(other.ctx);
  logger.on_epoch_end(other.ctx);
  CHECK(read_lines(path).back() == "2,9,,0.05,nan");
  CHECK(read_lines(path).size() == 4);
}

TEST_CASE("kiln::csv_logger starts afresh, or with .append = true continues an existing log") {
  const scratch_directory dir{"csv_append"};
  const auto path = dir.path / "metrics.csv";
  manual_context m;
  m.ctx.learning_rates = {0.1};
  m.ctx.metrics.set("train/loss", 1.0);
  const auto one_epoch = [&](kiln::csv_logger logger) {
    logger.on_fit_begin(m.ctx);
    logger.on_epoch_begin(m.ctx);
    logger.on_epoch_end(m.ctx);
    ++m.ctx.epoch;
  };
  one_epoch(kiln::csv_logger{.path = path});
  one_epoch(kiln::csv_logger{.path = path, .append = true});
  CHECK(read_file(path) == "epoch,step,train/loss,lr/group_0\n0,0,1,0.1\n1,0,1,0.1\n");
  one_epoch(kiln::csv_logger{.path = path});
  CHECK(read_file(path) == "epoch,step,train/loss,lr/group_0\n2,0,1,0.1\n");

  std::ofstream(path) << "id,prediction\n1,2\n";
  kiln::csv_logger foreign{.path = path, .append = true};
  CHECK_THROWS_WITH_AS(foreign.on_fit_begin(m.ctx), doctest::Contains("does not start with the header epoch,step"),
                       std::runtime_error);
  kiln::csv_logger nameless{.path = ""};
  CHECK_THROWS_WITH_AS(nameless.on_fit_begin(m.ctx), "kiln::csv_logger: path must be a file name, got \"\"",
                       std::invalid_argument);
}

TEST_CASE("loggers log the learning rates a callback already put into ctx.metrics once") {
  const scratch_directory dir{"csv_lr_once"};
  const auto path = dir.path / "metrics.csv";
  kiln::csv_logger logger{.path = path};
  manual_context m;
  m.ctx.learning_rates = {0.1, 1.0};
  m.ctx.metrics.set("lr/group_1", 0.5);
  logger.on_epoch_begin(m.ctx);
  logger.on_epoch_end(m.ctx);
  CHECK(read_file(path) == "epoch,step,lr/group_1,lr/group_0\n0,0,0.5,0.1\n");
}
