#include "../support.hpp"

#include <string>

using kiln::test::Mlp;

namespace {

struct recorder {
  std::vector<std::string>* log;
  void on_fit_begin(kiln::context&) { log->push_back("fit_begin"); }
  void on_epoch_begin(kiln::context& ctx) { log->push_back("epoch_begin " + std::to_string(ctx.epoch)); }
  void on_batch_begin(kiln::context& ctx) { log->push_back("batch_begin " + std::to_string(ctx.batch)); }
  void on_before_optimizer_step(kiln::context& ctx) { log->push_back("step " + std::to_string(ctx.step)); }
  void on_batch_end(kiln::context& ctx) {
    log->push_back("batch_end " + std::to_string(ctx.batch) + (ctx.loss.defined() ? " loss" : ""));
  }
  void on_validation_end(kiln::context& ctx) {
    log->push_back(std::string{"validation_end"} + (ctx.metrics.contains("val/loss") ? " val/loss" : ""));
  }
  void on_epoch_end(kiln::context& ctx) { log->push_back("epoch_end " + std::to_string(ctx.epoch)); }
  void on_fit_end(kiln::context&) { log->push_back("fit_end"); }
};

struct only_epoch_end {
  int calls = 0;
  void on_epoch_end(kiln::context&) { ++calls; }
};

struct stop_after_batches {
  std::int64_t limit;
  void on_batch_end(kiln::context& ctx) {
    if (ctx.step >= limit) ctx.request_stop();
  }
};

struct generic_hook {
  int calls = 0;
  void on_epoch_end(auto&) { ++calls; }
};

}  // namespace

// Hook detection: what is declared, what is callable.
static_assert(kiln::Callback<recorder>);
static_assert(kiln::Callback<only_epoch_end>);
static_assert(kiln::Callback<generic_hook>);
static_assert(kiln::hook::epoch_end::declared<only_epoch_end>);
static_assert(!kiln::hook::batch_end::declared<only_epoch_end>);
namespace {
struct wrong_parameter {
  void on_epoch_end(int) {}
};
struct returns_bool {
  bool on_batch_end(kiln::context&) { return true; }
};
struct data_member {
  int on_fit_end = 0;
};
struct no_hooks {
  void on_epoch_finished(kiln::context&) {}
};
}  // namespace
static_assert(kiln::hook::epoch_end::declared<wrong_parameter> && !kiln::Callback<wrong_parameter>);
static_assert(kiln::hook::batch_end::declared<returns_bool> && !kiln::Callback<returns_bool>);
static_assert(kiln::hook::fit_end::declared<data_member> && !kiln::Callback<data_member>);
static_assert(!kiln::Callback<no_hooks>);
static_assert(kiln::callbacks<only_epoch_end>::any<kiln::hook::epoch_end>);
static_assert(!kiln::callbacks<only_epoch_end>::any<kiln::hook::batch_end>);
static_assert(!kiln::callbacks<>::any<kiln::hook::batch_end>);

TEST_CASE("hooks are called in loop order, and only those a callback has") {
  auto data = kiln::test::make_toy(32);
  std::vector<std::string> log;
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::accumulate<2>{},
                  kiln::callbacks{recorder{&log}, only_epoch_end{}}};
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  t.fit(train, train, {.epochs = 1});
  const std::vector<std::string> expected{
      "fit_begin",     "epoch_begin 0", "batch_begin 0",         "batch_end 0 loss", "batch_begin 1",
      "step 0",        "batch_end 1 loss", "validation_end val/loss", "epoch_end 0",  "fit_end"};
  CHECK(log == expected);
  CHECK(t.callback_list().get<only_epoch_end>().calls == 1);
}

TEST_CASE("a callback can stop the fit") {
  auto data = kiln::test::make_toy(160);
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::callbacks{stop_after_batches{3}, only_epoch_end{}, generic_hook{}}};
  auto history = t.fit(kiln::data::tensor_batches{data.x, data.y, {.batch_size = 16}}, {.epochs = 5});
  CHECK(t.state().step == 3);
  CHECK(history.size() == 1);
  CHECK(t.callback_list().get<1>().calls == 1);
  CHECK(t.callback_list().get<2>().calls == 1);
}

TEST_CASE("the context carries epoch, step, learning rates and metrics") {
  struct checks {
    std::vector<double> lrs;
    double val_accuracy = -1;
    std::int64_t max_epochs = 0;
    void on_epoch_end(kiln::context& ctx) {
      lrs = ctx.learning_rates;
      val_accuracy = ctx.metrics.at("val/accuracy");
      max_epochs = ctx.max_epochs;
    }
  };
  auto data = kiln::test::make_toy(32);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  kiln::trainer t{kiln::backbone<Mlp>{.lr_ratio = 0.5}, kiln::head{torch::nn::Linear(3, 3)}, kiln::sgd{.lr = 0.2},
                  kiln::metrics<kiln::accuracy>{}, kiln::callbacks{checks{}}};
  t.fit(batches, batches, {.epochs = 2});
  const auto& c = t.callback_list().get<checks>();
  CHECK(c.lrs == std::vector<double>{0.1, 0.2});
  CHECK(c.val_accuracy >= 0.0);
  CHECK(c.val_accuracy <= 1.0);
  CHECK(c.max_epochs == 2);
}
