#include "loggers.hpp"

#include <kiln/callbacks/jsonl_logger.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

using namespace kiln::test;

static_assert(kiln::Callback<kiln::jsonl_logger>);

TEST_CASE("kiln::jsonl_logger writes one JSON object per epoch of a fit that parses back exactly") {
  const scratch_directory dir{"jsonl_fit"};
  const auto path = dir.path / "run" / "metrics.jsonl";
  const auto history = short_fit(kiln::jsonl_logger{.path = path});

  const auto lines = read_lines(path);
  REQUIRE(lines.size() == epochs);
  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    CAPTURE(epoch);
    const auto record = nlohmann::ordered_json::parse(lines[static_cast<std::size_t>(epoch)]);
    REQUIRE(record.is_object());
    std::vector<std::string> keys;
    for (const auto& item : record.items()) keys.push_back(item.key());
    CHECK(keys == std::vector<std::string>{"epoch", "step", "train/loss", "val/loss", "val/accuracy",
                                           "lr/group_0", "lr/group_1"});
    CHECK(record["epoch"].get<std::int64_t>() == epoch);
    CHECK(record["step"].get<std::int64_t>() == steps_per_epoch * (epoch + 1));
    for (const auto& [name, value] : history[static_cast<std::size_t>(epoch)]) {
      CHECK(record[name].get<double>() == value);  // bit for bit
    }
    CHECK(record["lr/group_0"].get<double>() == doctest::Approx(backbone_lr(epoch)).epsilon(1e-12));
    CHECK(record["lr/group_1"].get<double>() == doctest::Approx(head_lr(epoch)).epsilon(1e-12));
  }
}

TEST_CASE("kiln::jsonl_logger writes null for what is not a number, and can append") {
  const scratch_directory dir{"jsonl_nan"};
  const auto path = dir.path / "metrics.jsonl";
  manual_context m;
  m.ctx.metrics.set("train/loss", std::nan(""));
  m.ctx.metrics.set("val/loss", 0.1);
  kiln::jsonl_logger first{.path = path};
  first.on_fit_begin(m.ctx);
  first.on_epoch_begin(m.ctx);
  first.on_epoch_end(m.ctx);
  CHECK(read_file(path) == "{\"epoch\":0,\"step\":0,\"train/loss\":null,\"val/loss\":0.1}\n");

  kiln::jsonl_logger resumed{.path = path, .append = true};
  m.ctx.epoch = 1;
  resumed.on_fit_begin(m.ctx);
  resumed.on_epoch_begin(m.ctx);
  resumed.on_epoch_end(m.ctx);
  CHECK(read_lines(path).size() == 2);

  kiln::jsonl_logger fresh{.path = path};
  fresh.on_fit_begin(m.ctx);
  CHECK(read_file(path).empty());
}
