// The standard callbacks: early stopping, gradient clipping, NaN termination, learning-rate
// monitoring and the progress bar.
#include "../support.hpp"

#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/gradient_clipping.hpp>
#include <kiln/callbacks/lr_monitor.hpp>
#include <kiln/callbacks/progress_bar.hpp>
#include <kiln/callbacks/terminate_on_nan.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

using kiln::test::message_of;
using kiln::test::Mlp;

namespace {

// Feeds `values` to an early_stopping as successive epochs; returns the epoch it stopped at.
std::int64_t stops_at(kiln::early_stopping es, const std::vector<double>& values, const char* name = "val/loss") {
  Mlp net;
  torch::optim::SGD opt(net->parameters(), 0.1);
  kiln::context ctx{*net, opt};
  es.on_fit_begin(ctx);
  for (std::size_t e = 0; e < values.size() && !ctx.stop_requested(); ++e) {
    ctx.epoch = static_cast<std::int64_t>(e);
    ctx.metrics.set(name, values[e]);
    es.on_epoch_end(ctx);
  }
  return es.stopped_epoch();
}

}  // namespace

TEST_CASE("early_stopping: patience counts epochs in a row without an improvement beyond min_delta") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(stops_at({.patience = 3}, {1.0, 0.9, 0.95, 0.96, 0.97, 0.5}) == 4);
  CHECK(stops_at({.patience = 3}, {1.0, 0.9, 0.95, 0.8, 0.96, 0.97, 0.98}) == 6);
  CHECK(stops_at({.patience = 1}, {1.0, 1.0}) == 1);  // equal is not better
  CHECK(stops_at({.min_delta = 0.1, .patience = 2}, {1.0, 0.95, 0.92}) == 2);
  CHECK(stops_at({.min_delta = 0.1, .patience = 2}, {1.0, 0.85, 0.8}) == -1);
  CHECK(stops_at({.monitor = "val/accuracy", .mode = kiln::mode::max, .patience = 2}, {0.5, 0.6, 0.55, 0.6},
                 "val/accuracy") == 3);
  CHECK(stops_at({.patience = 5}, {1.0, nan}) == 1);
  CHECK(stops_at({.patience = 5, .stop_on_non_finite = false}, {1.0, nan, 0.5}) == -1);
  CHECK(stops_at({.patience = 5}, {1.0, std::numeric_limits<double>::infinity()}) == 1);
  CHECK_THROWS_WITH_AS(stops_at({.monitor = "val/f1"}, {1.0}), doctest::Contains("no value named 'val/f1'"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(stops_at({.patience = 0}, {1.0}), "kiln::early_stopping: patience must be at least 1, got 0",
                       std::invalid_argument);
}

TEST_CASE("early_stopping ends a real fit and can restore the best weights") {
  auto data = kiln::test::make_toy(64, 4);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  // A learning rate this large makes validation loss get worse after the first epochs.
  struct snapshot_each_epoch {
    std::vector<std::vector<torch::Tensor>>* states;
    void on_validation_end(kiln::context& ctx) { states->push_back(kiln::test::snapshot(ctx.model.parameters())); }
  };
  std::vector<std::vector<torch::Tensor>> states;
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 5.0},
                  kiln::callbacks{snapshot_each_epoch{&states},
                                  kiln::early_stopping{.patience = 2, .restore_best_weights = true}}};
  auto history = t.fit(batches, batches, {.epochs = 30});
  const auto& es = t.callback_list().get<kiln::early_stopping>();
  REQUIRE(es.stopped_epoch() >= 0);
  CHECK(history.size() == static_cast<std::size_t>(es.stopped_epoch() + 1));
  std::size_t best = 0;
  for (std::size_t e = 0; e < history.size(); ++e) {
    if (history[e].at("val/loss") < history[best].at("val/loss")) best = e;
  }
  CHECK(es.best_epoch() == static_cast<std::int64_t>(best));
  CHECK(kiln::test::max_abs_diff(states[best], t.model()->parameters()) == 0.0);
}

TEST_CASE("clip_grad_norm rescales gradients exactly as torch::nn::utils::clip_grad_norm_") {
  for (double norm_type : {2.0, 1.0, std::numeric_limits<double>::infinity()}) {
    for (double max_norm : {0.01, 0.5, 1e3}) {
      torch::manual_seed(3);
      Mlp a, b;
      {
        torch::NoGradGuard g;
        for (std::size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
      }
      auto data = kiln::test::make_toy(32, 9);
      torch::nn::functional::cross_entropy(a->forward(data.x), data.y).backward();
      torch::nn::functional::cross_entropy(b->forward(data.x), data.y).backward();
      torch::optim::SGD opt(a->parameters(), 0.1);
      kiln::context ctx{*a, opt};
      kiln::clip_grad_norm clip{.max_norm = max_norm, .norm_type = norm_type};
      clip.on_fit_begin(ctx);
      clip.on_before_optimizer_step(ctx);
      const double total = torch::nn::utils::clip_grad_norm_(b->parameters(), max_norm, norm_type);
      CHECK(clip.last_total_norm().item<double>() == doctest::Approx(total).epsilon(1e-6));
      for (std::size_t i = 0; i < a->parameters().size(); ++i) {
        CHECK(torch::allclose(a->parameters()[i].grad(), b->parameters()[i].grad(), 1e-6, 1e-7));
      }
    }
  }
}

TEST_CASE("clip_grad_value clamps every gradient element") {
  torch::manual_seed(4);
  Mlp a;
  auto data = kiln::test::make_toy(32, 9);
  (torch::nn::functional::cross_entropy(a->forward(data.x), data.y) * 100).backward();
  torch::optim::SGD opt(a->parameters(), 0.1);
  kiln::context ctx{*a, opt};
  kiln::clip_grad_value clip{.clip_value = 0.05};
  clip.on_fit_begin(ctx);
  const auto before = kiln::test::snapshot({a->parameters()[0].grad()});
  clip.on_before_optimizer_step(ctx);
  CHECK(torch::equal(a->parameters()[0].grad(), before[0].clamp(-0.05, 0.05)));
  CHECK(before[0].abs().max().item<double>() > 0.05);  // something was clipped
}

TEST_CASE("terminate_on_nan stops the fit when the loss stops being finite") {
  auto data = kiln::test::make_toy(160);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  int calls = 0;
  auto poisoned = [&calls](const torch::Tensor& out, const torch::Tensor& y) {
    auto loss = torch::nn::functional::cross_entropy(out, y);
    return ++calls >= 7 ? loss * std::numeric_limits<double>::quiet_NaN() : loss;
  };
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::loss{poisoned}, kiln::callbacks{kiln::terminate_on_nan{.check_every = 1}}};
  auto history = t.fit(batches, {.epochs = 3});
  CHECK(t.callback_list().get<kiln::terminate_on_nan>().triggered() == 7);
  CHECK(t.state().step == 7);
  CHECK(history.size() == 1);

  // Checked every 4 steps: found at the first check after the bad step, no earlier.
  calls = 0;
  kiln::trainer u{kiln::backbone<Mlp>{}, kiln::loss{poisoned}, kiln::callbacks{kiln::terminate_on_nan{.check_every = 4}}};
  u.fit(batches, {.epochs = 3});
  CHECK(u.callback_list().get<kiln::terminate_on_nan>().triggered() == 8);
}

TEST_CASE("terminate_on_nan says where it stopped and what to try, on its stream") {
  auto data = kiln::test::make_toy(160);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  int calls = 0;
  auto infinite = [&calls](const torch::Tensor& out, const torch::Tensor& y) {
    auto loss = torch::nn::functional::cross_entropy(out, y);
    return ++calls >= 13 ? loss * std::numeric_limits<double>::infinity() : loss;  // epoch 1, batch 2
  };
  std::FILE* stream = std::tmpfile();
  REQUIRE(stream != nullptr);
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::loss{infinite},
                  kiln::callbacks{kiln::terminate_on_nan{.check_every = 1, .stream = stream}}};
  t.fit(batches, {.epochs = 3});
  const auto& reason = t.callback_list().get<kiln::terminate_on_nan>().reason();
  CHECK(reason ==
        "kiln::terminate_on_nan: the training loss was NaN or infinite at or before optimizer step 13 (epoch 1, "
        "checked every 1 steps); the fit stopped. The weights may hold non-finite values now: resume from the last "
        "checkpoint, and lower the learning rate, clip the gradients (kiln::clip_grad_norm) or look for NaN in the "
        "data.");
  std::rewind(stream);
  char line[512] = {};
  REQUIRE(std::fgets(line, sizeof line, stream) != nullptr);
  CHECK(std::string{line} == reason + "\n");
  std::fclose(stream);
}

TEST_CASE("skip_nonfinite_steps: a skipped step is as if its batch never came") {
  auto data = kiln::test::make_toy(160);
  // Batches 3 and 7 of 10 give a NaN loss, so NaN gradients.
  int calls = 0;
  auto poisoned = [&calls](const torch::Tensor& out, const torch::Tensor& y) {
    auto loss = torch::nn::functional::cross_entropy(out, y);
    const int batch = calls++ % 10;
    return batch == 3 || batch == 7 ? loss * std::numeric_limits<double>::quiet_NaN() : loss;
  };
  torch::manual_seed(5);
  kiln::trainer skipping{kiln::backbone<Mlp>{}, kiln::loss{poisoned}, kiln::adam{.lr = 0.01},
                         kiln::callbacks{kiln::skip_nonfinite_steps{.stream = nullptr}}};
  kiln::data::tensor_batches all{data.x, data.y, {.batch_size = 16}};
  skipping.fit(all, {.epochs = 2});
  CHECK(skipping.callback_list().get<kiln::skip_nonfinite_steps>().skipped() == 4);
  CHECK(skipping.callback_list().get<kiln::skip_nonfinite_steps>().reason().empty());

  // The reference: the same model and optimizer trained on the 8 good batches only, by hand.
  torch::manual_seed(5);
  Mlp reference;
  torch::optim::Adam adam(reference->parameters(), torch::optim::AdamOptions(0.01));
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (int batch = 0; batch < 10; ++batch) {
      if (batch == 3 || batch == 7) continue;
      adam.zero_grad();
      torch::nn::functional::cross_entropy(reference->forward(data.x.narrow(0, 16 * batch, 16)),
                                           data.y.narrow(0, 16 * batch, 16))
          .backward();
      adam.step();
    }
  }
  CHECK(kiln::test::same_state(skipping.backbone(), reference));
}

TEST_CASE("skip_nonfinite_steps stops the fit after too many bad steps in a row, and says so") {
  auto data = kiln::test::make_toy(160);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  auto broken = [](const torch::Tensor& out, const torch::Tensor& y) {
    return torch::nn::functional::cross_entropy(out, y) * std::numeric_limits<double>::quiet_NaN();
  };
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::loss{broken},
                  kiln::callbacks{kiln::skip_nonfinite_steps{.max_in_a_row = 3, .stream = nullptr}}};
  const auto before = kiln::test::snapshot(t.backbone()->parameters());
  t.fit(batches, {.epochs = 2});
  const auto& skip = t.callback_list().get<kiln::skip_nonfinite_steps>();
  CHECK(skip.skipped() == 3);
  CHECK(skip.reason() ==
        "kiln::skip_nonfinite_steps: 3 optimizer steps in a row had NaN or infinite gradients (the last at step 2, "
        "epoch 0); the fit stopped. Lower the learning rate or look for NaN in the data.");
  CHECK(kiln::test::max_abs_diff(before, t.backbone()->parameters()) == 0.0);  // no step changed a weight
  kiln::trainer invalid{kiln::backbone<Mlp>{}, kiln::callbacks{kiln::skip_nonfinite_steps{.max_in_a_row = -1}}};
  CHECK(message_of([&] { invalid.fit(batches); }).starts_with("kiln::skip_nonfinite_steps: max_in_a_row must be at least 0"));
}

TEST_CASE("lr_monitor records every group's learning rate and reports it") {
  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  kiln::trainer t{kiln::backbone<Mlp>{.lr_ratio = 0.1}, kiln::head{torch::nn::Linear(3, 3)}, kiln::sgd{.lr = 1.0},
                  kiln::step_lr{.step_size = 2, .gamma = 0.5, .interval = kiln::interval::step},
                  kiln::callbacks{kiln::lr_monitor{.interval = kiln::interval::step}}};
  auto history = t.fit(batches, {.epochs = 1});
  const auto& records = t.callback_list().get<kiln::lr_monitor>().history();
  REQUIRE(records.size() == 5);  // before the first step, then after each of 4 steps
  CHECK(records[0].learning_rates == std::vector<double>{0.1, 1.0});
  CHECK(records[4].step == 4);
  CHECK(records[4].learning_rates[1] == doctest::Approx(0.25));
  CHECK(history.back().at("lr/group_0") == doctest::Approx(0.1));  // in force while the epoch trained
}

TEST_CASE("progress_bar writes plain lines with rate and loss when not on a terminal") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::metrics<kiln::accuracy>{},
                  kiln::callbacks{kiln::progress_bar{.stream = out, .plain_every_seconds = 0.0}}};
  t.fit(batches, batches, {.epochs = 2});
  std::rewind(out);
  std::string text;
  for (int c; (c = std::fgetc(out)) != EOF;) text += static_cast<char>(c);
  std::fclose(out);
  CHECK(text.find("epoch 1/2 [#####---------------] 1/4  25%") != std::string::npos);
  CHECK(text.find("batch/s  ETA ") != std::string::npos);
  CHECK(text.find("  loss ") != std::string::npos);
  CHECK(text.find("epoch 2/2 done in ") != std::string::npos);
  CHECK(text.find("val/accuracy ") != std::string::npos);
  CHECK(text.find('\r') == std::string::npos);  // no terminal control in a file
}
