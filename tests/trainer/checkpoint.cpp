// Checkpoints: an interrupted run resumed from one ends bit-identical to the uninterrupted run;
// bad checkpoints are refused with a message that names the problem; model_checkpoint keeps the
// best k; backbone_finetuning unfreezes without touching the optimizer's groups.
#include "../support.hpp"
#include "fixtures/pipeline.hpp"

#include <kiln/callbacks/backbone_finetuning.hpp>
#include <kiln/callbacks/checkpoint_on_signal.hpp>
#include <kiln/callbacks/early_stopping.hpp>
#include <kiln/callbacks/model_checkpoint.hpp>
#include <kiln/callbacks/terminate_on_nan.hpp>
#include <kiln/trainer/checkpointing.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace fs = std::filesystem;

namespace {

/// Four children, with BatchNorm (buffers) and dropout (random numbers in every step).
struct DropNetImpl : torch::nn::Module {
  explicit DropNetImpl(std::int64_t hidden = 16) {
    fc = register_module("fc", torch::nn::Linear(8, hidden));
    bn = register_module("bn", torch::nn::BatchNorm1d(hidden));
    act = register_module("act", torch::nn::ReLU());
    drop = register_module("drop", torch::nn::Dropout(0.3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return drop->forward(act->forward(bn->forward(fc->forward(x)))); }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
  torch::nn::ReLU act{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(DropNet);

fs::path fresh_dir(const std::string& name) { return kiln::test::fresh_dir("checkpoint", name); }

// Ends a fit after `epochs` epochs, as a killed process would have.
struct stop_after {
  std::int64_t epochs;
  void on_epoch_end(kiln::context& ctx) {
    if (ctx.epoch + 1 == epochs) ctx.request_stop();
  }
};

// Every role, and callbacks with state, so that each part of a checkpoint matters.
template <class Optimizer = kiln::adamw, class... Extra>
auto make_trainer(const fs::path& dir, std::int64_t hidden, Extra... extra) {
  return kiln::trainer{kiln::backbone<DropNet>{.module = DropNet(hidden)},
                       kiln::freeze<1>{},
                       kiln::head{torch::nn::Linear(hidden, 3)},
                       Optimizer{.lr = 0.02},
                       kiln::cosine_annealing{.t_max = 40, .interval = kiln::interval::step},
                       kiln::accumulate<2>{},
                       kiln::metrics<kiln::accuracy>{},
                       kiln::callbacks{kiln::early_stopping{.monitor = "val/accuracy", .mode = kiln::mode::max,
                                                            .patience = 50, .restore_best_weights = true},
                                       kiln::backbone_finetuning{.unfreeze_at_epoch = 2, .lr_ratio = 0.5},
                                       extra...,
                                       kiln::model_checkpoint{.directory = dir, .monitor = "val/accuracy",
                                                              .mode = kiln::mode::max, .keep_best = 2},
                                       kiln::csv_logger{.path = dir / "log.csv"}}};
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

struct data {
  kiln::test::toy_data train = kiln::test::make_toy(96, 1), val = kiln::test::make_toy(48, 2);
  kiln::data::tensor_batches train_batches{train.x, train.y, {.batch_size = 10, .shuffle = true, .seed = 7}};
  kiln::data::tensor_batches val_batches{val.x, val.y, {.batch_size = 16}};
};

}  // namespace

TEST_CASE("a run stopped after epoch e and resumed from its checkpoint ends bit-identical to the unstopped run") {
  data d;
  const auto whole = fresh_dir("whole"), parts = fresh_dir("parts");
  constexpr std::int64_t epochs = 6;

  torch::manual_seed(3);
  auto reference = make_trainer(whole, 16);
  const auto expected = reference.fit(d.train_batches, d.val_batches, {.epochs = epochs});

  for (const std::int64_t stop : {1, 2, 4}) {
    CAPTURE(stop);
    fs::remove_all(parts);
    {
      torch::manual_seed(3);
      auto first = make_trainer(parts, 16);
      first.fit(d.train_batches, d.val_batches, {.epochs = stop});  // as if killed after epoch `stop`
    }
    torch::manual_seed(99);  // other initial weights and random numbers: the checkpoint must replace them
    auto resumed = make_trainer(parts, 16);
    const auto history = resumed.fit(d.train_batches, d.val_batches, {.epochs = epochs, .resume_from = parts / "last.pt"});

    CHECK(kiln::test::same_state(resumed.model(), reference.model()));
    REQUIRE(history.size() == expected.size());
    for (std::size_t e = 0; e < history.size(); ++e) {
      CHECK(history[e].at("train/loss") == expected[e].at("train/loss"));
      CHECK(history[e].at("val/accuracy") == expected[e].at("val/accuracy"));
    }
    CHECK(resumed.state().step == reference.state().step);
    CHECK(resumed.state().learning_rates == reference.state().learning_rates);
    auto& es = resumed.callback_list().get<kiln::early_stopping>();
    auto& es_ref = reference.callback_list().get<kiln::early_stopping>();
    CHECK(es.best() == es_ref.best());
    CHECK(es.best_epoch() == es_ref.best_epoch());
    // The same best files are kept, and the log holds each epoch once.
    CHECK(resumed.callback_list().get<kiln::model_checkpoint>().state.values ==
          reference.callback_list().get<kiln::model_checkpoint>().state.values);
    auto log = read_file(parts / "log.csv"), log_ref = read_file(whole / "log.csv");
    CHECK(log == log_ref);
  }
}

TEST_CASE("a fit interrupted in the middle of an epoch resumes there, bit-identical") {
  // Interrupts at a batch of an epoch and writes the checkpoint, as kiln::checkpoint_on_signal
  // does. (early_stopping's restore_best_weights changes the weights in on_fit_end, later.)
  struct interrupt_at {
    std::int64_t epoch, batch;
    fs::path path;
    void on_batch_end(kiln::context& ctx) {
      if (ctx.epoch == epoch && ctx.batch + 1 >= batch) ctx.interrupt();
    }
    void on_interrupt(kiln::context& ctx) { ctx.save_checkpoint(path); }
  };
  data d;
  const auto whole = fresh_dir("mid_whole"), parts = fresh_dir("mid_parts");
  torch::manual_seed(3);
  auto reference = make_trainer(whole, 16);
  const auto expected = reference.fit(d.train_batches, d.val_batches, {.epochs = 4});

  for (const std::int64_t batch : {1, 3, 6}) {  // with accumulate<2>, 1 and 3 end at the window's end
    CAPTURE(batch);
    fs::remove_all(parts);
    {
      torch::manual_seed(3);
      auto first = make_trainer(parts, 16, interrupt_at{2, batch, parts / "mid.pt"});
      const auto done = first.fit(d.train_batches, d.val_batches, {.epochs = 4});
      CHECK(done.size() == 2);
      CHECK(first.state().interrupted());
    }
    const auto info = kiln::read_checkpoint_info(parts / "mid.pt");
    CHECK(info.epoch == 2);
    CHECK(info.step == 2 * 5 + (batch + 1) / 2);
    torch::manual_seed(99);
    auto resumed = make_trainer(parts, 16);
    const auto history = resumed.fit(d.train_batches, d.val_batches, {.epochs = 4, .resume_from = parts / "mid.pt"});
    CHECK(kiln::test::same_state(resumed.model(), reference.model()));
    REQUIRE(history.size() == 4);
    CHECK(history[2].at("train/loss") == expected[2].at("train/loss"));
    CHECK(history[3].at("val/loss") == expected[3].at("val/loss"));
    CHECK(read_file(parts / "log.csv") == read_file(whole / "log.csv"));
  }
}

TEST_CASE("checkpoint_on_signal: SIGINT ends the fit after a checkpoint, and the run resumes from it") {
  struct signal_at {
    std::int64_t epoch, batch;
    void on_batch_end(kiln::context& ctx) {
      if (ctx.epoch == epoch && ctx.batch == batch) std::raise(SIGINT);
    }
  };
  data d;
  const auto whole = fresh_dir("sig_whole"), parts = fresh_dir("sig_parts");
  torch::manual_seed(3);
  auto reference = make_trainer(whole, 16);
  reference.fit(d.train_batches, d.val_batches, {.epochs = 3});
  struct sigaction before {};
  ::sigaction(SIGINT, nullptr, &before);
  {
    torch::manual_seed(3);
    auto first = make_trainer(parts, 16, signal_at{1, 4},
                              kiln::checkpoint_on_signal{.path = parts / "interrupted.pt", .reraise = false});
    CHECK(first.fit(d.train_batches, d.val_batches, {.epochs = 3}).size() == 1);
  }
  struct sigaction now {};
  ::sigaction(SIGINT, nullptr, &now);
  const bool handler_restored = now.sa_handler == before.sa_handler;
  CHECK(handler_restored);
  CHECK(kiln::read_checkpoint_info(parts / "interrupted.pt").step == 5 + 3);
  auto resumed = make_trainer(parts, 16);
  resumed.fit(d.train_batches, d.val_batches, {.epochs = 3, .resume_from = parts / "interrupted.pt"});
  CHECK(kiln::test::same_state(resumed.model(), reference.model()));
}

TEST_CASE("a checkpoint records its header, counters, history and configuration") {
  data d;
  const auto dir = fresh_dir("info");
  torch::manual_seed(3);
  auto t = make_trainer(dir, 16);
  const auto history = t.fit(d.train_batches, d.val_batches, {.epochs = 3});
  const auto info = kiln::read_checkpoint_info(dir / "last.pt");
  CHECK(info.format == 2);
  CHECK(info.epoch == 3);
  CHECK(info.step == t.state().step);
  CHECK_FALSE(info.stopped);
  REQUIRE(info.history.size() == 3);
  CHECK(info.history[2].at("val/loss") == history[2].at("val/loss"));
  REQUIRE(info.pipeline.size() == 7);
  bool names_optimizer = false;
  for (const auto& [role, type] : info.pipeline) names_optimizer |= role == "optimizer" && type == "kiln::adamw";
  CHECK(names_optimizer);
}

// format2.pt was written by kiln before the trainer moved to kiln/trainer/ (see
// fixtures/pipeline.hpp). Training the same pipeline today reaches the same state, up to the
// last bits that another CPU's BLAS kernels may change.
TEST_CASE("a checkpoint written by an earlier kiln (format 2) loads, and resumes as the run would have gone on") {
  const auto fixture = fs::path{KILN_TEST_SOURCE_DIR} / "trainer" / "fixtures" / "format2.pt";
  const auto info = kiln::read_checkpoint_info(fixture);
  CHECK(info.format == 2);
  CHECK(info.epoch == kiln_fixture::epochs);
  CHECK(info.step == 3 * kiln_fixture::epochs);  // six batches, a step every two
  REQUIRE(info.pipeline.size() == 7);

  const auto dir = fresh_dir("format2");
  const auto data = kiln_fixture::batches();
  auto fresh = kiln_fixture::make_trainer(dir / "fresh");
  const auto history = fresh.fit(data, data, {.epochs = kiln_fixture::epochs});
  auto loaded = kiln_fixture::make_trainer(dir / "loaded");
  loaded.load_checkpoint(fixture);

  CHECK(loaded.state().step == fresh.state().step);
  CHECK(loaded.state().frozen.size() == 1);
  CHECK(loaded.state().learning_rates == fresh.state().learning_rates);
  REQUIRE(info.history.size() == history.size());
  for (std::size_t e = 0; e < history.size(); ++e) {
    REQUIRE(info.history[e].size() == history[e].size());
    for (const auto& [name, value] : history[e]) {
      CAPTURE(name);
      CHECK(info.history[e].at(name) == doctest::Approx(value).epsilon(1e-5));
    }
  }
  const auto parameters = kiln::test::snapshot(fresh.model()->parameters());
  CHECK(kiln::test::max_abs_diff(kiln::test::snapshot(loaded.model()->parameters()), parameters) < 1e-5);

  // Two more epochs from the file end where five uninterrupted epochs do.
  auto resumed = kiln_fixture::make_trainer(dir / "resumed");
  resumed.fit(data, data, {.epochs = 5, .resume_from = fixture});
  auto straight = kiln_fixture::make_trainer(dir / "straight");
  straight.fit(data, data, {.epochs = 5});
  CHECK(resumed.state().step == straight.state().step);
  CHECK(kiln::test::max_abs_diff(kiln::test::snapshot(resumed.model()->parameters()),
                                 kiln::test::snapshot(straight.model()->parameters())) < 1e-5);
  CHECK(kiln::test::max_abs_diff(kiln::test::snapshot(resumed.model()->parameters()), parameters) > 1e-3);
}

TEST_CASE("a resumed fit that reaches its epochs trains no further; a stopped run stays stopped") {
  data d;
  const auto dir = fresh_dir("done");
  torch::manual_seed(3);
  auto t = make_trainer(dir, 16);
  t.fit(d.train_batches, d.val_batches, {.epochs = 2});
  const auto weights = kiln::test::snapshot(t.model()->parameters());
  auto again = make_trainer(dir / "elsewhere", 16);
  const auto history = again.fit(d.train_batches, d.val_batches, {.epochs = 2, .resume_from = dir / "last.pt"});
  CHECK(history.size() == 2);
  CHECK(kiln::test::max_abs_diff(again.model()->parameters(), weights) == 0.0);

  const auto stopped_dir = fresh_dir("stopped");
  auto stopped = make_trainer(stopped_dir, 16, stop_after{1});
  CHECK(stopped.fit(d.train_batches, d.val_batches, {.epochs = 4}).size() == 1);
  CHECK(kiln::read_checkpoint_info(stopped_dir / "last.pt").stopped);
  auto after = make_trainer(dir / "after", 16);
  CHECK(after.fit(d.train_batches, d.val_batches, {.epochs = 4, .resume_from = stopped_dir / "last.pt"}).size() == 1);
}

// A callback that writes a checkpoint from a hook where kiln does not expect one.
struct save_at_epoch_end {
  fs::path path;
  void on_epoch_end(kiln::context& ctx) { ctx.save_checkpoint(path); }
};

struct save_on_interrupt {
  fs::path path;
  void on_interrupt(kiln::context& ctx) { ctx.save_checkpoint(path); }
};

TEST_CASE("a pipeline without a checkpoint hook leaves checkpoints out, and says so when asked for one") {
  using plain = kiln::trainer<kiln::backbone<DropNet>>;
  using logging = kiln::trainer<kiln::backbone<DropNet>, kiln::callbacks<stop_after, kiln::early_stopping>>;
  using saving = kiln::trainer<kiln::backbone<DropNet>, kiln::callbacks<stop_after, kiln::model_checkpoint>>;
  using on_signal = kiln::trainer<kiln::backbone<DropNet>, kiln::callbacks<kiln::checkpoint_on_signal>>;
  using interrupting = kiln::trainer<kiln::backbone<DropNet>, kiln::callbacks<save_on_interrupt>>;
  CHECK_FALSE(plain::has_checkpoint_hooks);
  CHECK_FALSE(logging::has_checkpoint_hooks);
  CHECK(saving::has_checkpoint_hooks);
  CHECK(on_signal::has_checkpoint_hooks);
  CHECK(interrupting::has_checkpoint_hooks);

  data d;
  const auto dir = fresh_dir("left_out");
  torch::manual_seed(5);
  auto with = make_trainer(dir, 16);
  with.fit(d.train_batches, d.val_batches, {.epochs = 1});
  REQUIRE(fs::exists(dir / "last.pt"));

  // Resuming is refused before anything changes.
  kiln::trainer t{kiln::backbone<DropNet>{.module = DropNet(16)}, kiln::head{torch::nn::Linear(16, 3)}};
  const auto before = kiln::test::snapshot(t.model()->parameters());
  const auto refused = kiln::test::message_of([&] { t.fit(d.train_batches, d.val_batches, {.epochs = 2, .resume_from = dir / "last.pt"}); });
  CHECK(refused.find("kiln::trainer::fit: cannot resume from '" + (dir / "last.pt").string() + "'") == 0);
  CHECK(refused.find("none of its callbacks has an on_checkpoint or on_interrupt hook") != std::string::npos);
  CHECK(refused.find("kiln::model_checkpoint") != std::string::npos);
  CHECK(kiln::test::max_abs_diff(t.model()->parameters(), before) == 0.0);
  CHECK(t.state().step == 0);

  // So is writing one from another hook, without leaving a file behind.
  kiln::trainer u{kiln::backbone<DropNet>{.module = DropNet(16)}, kiln::callbacks{save_at_epoch_end{dir / "u.pt"}}};
  CHECK_THROWS_AS(u.fit(d.train_batches, {.epochs = 1}), std::logic_error);
  const auto message = kiln::test::message_of([&] { u.fit(d.train_batches, {.epochs = 1}); });
  CHECK(message.find("on_checkpoint or on_interrupt") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "u.pt"));

  // The trainer's own members still write and read a checkpoint, compiled where they are called.
  t.fit(d.train_batches, d.val_batches, {.epochs = 1});
  t.save_checkpoint(dir / "t.pt");
  kiln::trainer v{kiln::backbone<DropNet>{.module = DropNet(16)}, kiln::head{torch::nn::Linear(16, 3)}};
  v.load_checkpoint(dir / "t.pt");
  CHECK(kiln::test::max_abs_diff(v.model()->parameters(), kiln::test::snapshot(t.model()->parameters())) == 0.0);
  CHECK(v.state().step == t.state().step);
}

TEST_CASE("bad checkpoints are refused with a message that names the file and the problem") {
  data d;
  const auto dir = fresh_dir("bad");
  torch::manual_seed(3);
  {
    auto t = make_trainer(dir, 16);
    t.fit(d.train_batches, d.val_batches, {.epochs = 1});
  }
  const auto good = dir / "last.pt";
  const std::string bytes = read_file(good);
  auto load = [&](auto& trainer, const fs::path& path) {
    return kiln::test::message_of([&] { trainer.load_checkpoint(path); });
  };
  auto t = make_trainer(dir / "other", 16);

  SUBCASE("missing") {
    CHECK(load(t, dir / "nope.pt").find("'" + (dir / "nope.pt").string() + "'): no such file") != std::string::npos);
  }
  SUBCASE("truncated") {
    for (const std::size_t keep : {std::size_t{0}, std::size_t{100}, bytes.size() / 2, bytes.size() - 10}) {
      CAPTURE(keep);
      write_file(dir / "cut.pt", bytes.substr(0, keep));
      CHECK(load(t, dir / "cut.pt").find("truncated or corrupt") != std::string::npos);
    }
  }
  SUBCASE("damage anywhere is caught by the seal before anything is loaded") {
    // LibTorch's reader does not verify the zip's checksums: without the seal, most of these
    // load without complaint, with wrong numbers.
    std::size_t tried = 0;
    for (std::size_t at = 0; at < bytes.size(); at += 61, ++tried) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ (1 << (at % 8)));  // one bit
      write_file(dir / "damaged.pt", damaged);
      const auto message = load(t, dir / "damaged.pt");
      CAPTURE(at);
      CHECK(message.find("damaged.pt'): ") != std::string::npos);
      CHECK(message.find("corrupt") != std::string::npos);
    }
    CHECK(tried > 100);
  }
  SUBCASE("without its seal, a checkpoint is refused; weights load from files of other tools") {
    write_file(dir / "unsealed.pt", bytes.substr(0, bytes.size() - kiln::detail::seal_size));
    CHECK(load(t, dir / "unsealed.pt").find("truncated or corrupt: the seal that ends every checkpoint is missing") !=
          std::string::npos);
    kiln::save_weights(t.model(), dir / "weights.pt");
    const std::string weights = read_file(dir / "weights.pt");
    write_file(dir / "plain.pt", weights.substr(0, weights.size() - kiln::detail::seal_size));  // as torch::save writes
    auto other = make_trainer(dir / "plain", 16);
    kiln::load_weights(other.model(), dir / "plain.pt");
    CHECK(kiln::test::max_abs_diff(other.model()->parameters(), kiln::test::snapshot(t.model()->parameters())) == 0.0);
    std::string damaged = weights;
    damaged[weights.size() / 2] = static_cast<char>(~damaged[weights.size() / 2]);
    write_file(dir / "damaged.pt", damaged);
    CHECK(kiln::test::message_of([&] { kiln::load_weights(other.model(), dir / "damaged.pt"); })
              .find("damaged.pt': corrupt: its checksum does not match") != std::string::npos);
  }
  SUBCASE("weights only") {
    kiln::save_weights(t.model(), dir / "weights.pt");
    CHECK(load(t, dir / "weights.pt").find("not a kiln checkpoint") != std::string::npos);
  }
  SUBCASE("another pipeline") {
    auto sgd = make_trainer<kiln::sgd>(dir / "sgd", 16);
    CHECK(load(sgd, good).find("written by another pipeline: its optimizer is kiln::adamw, this trainer's is kiln::sgd") !=
          std::string::npos);
  }
  SUBCASE("other shapes") {
    auto wide = make_trainer(dir / "wide", 32);
    const auto message = load(wide, good);
    CHECK(message.find("has shape [16, 8] in the file but [32, 8]") != std::string::npos);
  }
  SUBCASE("the error type is kiln::checkpoint_error") {
    CHECK_THROWS_AS(t.load_checkpoint(dir / "nope.pt"), kiln::checkpoint_error);
  }
}

TEST_CASE("a checkpoint write that fails leaves the previous checkpoint whole") {
  data d;
  const auto dir = fresh_dir("atomic");
  torch::manual_seed(3);
  auto t = make_trainer(dir, 16);
  t.fit(d.train_batches, d.val_batches, {.epochs = 1});
  const std::string before = read_file(dir / "last.pt");
  // The temporary file's name is taken by a directory, so the write fails part way.
  const auto blocker = dir / (".last.pt.tmp." + std::to_string(::getpid()));
  fs::create_directories(blocker);
  const auto message = kiln::test::message_of([&] { t.save_checkpoint(dir / "last.pt"); });
  CHECK(message.find("the previous file, if any, is intact") != std::string::npos);
  CHECK(read_file(dir / "last.pt") == before);
  CHECK(kiln::read_checkpoint_info(dir / "last.pt").epoch == 1);
}

TEST_CASE("a disk that fills up during a checkpoint write leaves the previous checkpoint whole") {
  data d;
  const auto dir = fresh_dir("full");
  torch::manual_seed(3);
  auto t = make_trainer(dir, 16);
  t.fit(d.train_batches, d.val_batches, {.epochs = 1});
  const std::string before = read_file(dir / "last.pt");
  // A file-size limit makes writes fail part way with EFBIG, as a full disk fails them with ENOSPC.
  struct rlimit old {};
  ::getrlimit(RLIMIT_FSIZE, &old);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = before.size() / 2;
  ::setrlimit(RLIMIT_FSIZE, &small);
  const auto message = kiln::test::message_of([&] { t.save_checkpoint(dir / "last.pt"); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  CHECK(message.find("writing '" + (dir / "last.pt").string() + "' failed") != std::string::npos);
  CHECK(message.find("the previous file, if any, is intact") != std::string::npos);
  CHECK(read_file(dir / "last.pt") == before);
  for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("a fit whose loss turns NaN stops with the last good checkpoint intact") {
  // Poisons a weight in the middle of epoch 2: every later loss is NaN.
  struct poison {
    void on_batch_end(kiln::context& ctx) {
      if (ctx.epoch == 2 && ctx.batch == 3) {
        torch::NoGradGuard no_grad;
        ctx.model.parameters().front().fill_(std::numeric_limits<float>::quiet_NaN());
      }
    }
  };
  data d;
  for (const std::int64_t check_every : {1, 100}) {  // stopped in the middle of the epoch, or at its end
    CAPTURE(check_every);
    const auto dir = fresh_dir("nan");
    torch::manual_seed(3);
    auto t = make_trainer(dir, 16, poison{}, kiln::terminate_on_nan{.check_every = check_every});
    const auto history = t.fit(d.train_batches, d.val_batches, {.epochs = 5});
    CHECK(t.callback_list().get<kiln::terminate_on_nan>().triggered() >= 0);
    CHECK(history.size() == 3);
    const auto info = kiln::read_checkpoint_info(dir / "last.pt");
    CHECK(info.epoch == 2);  // epochs 0 and 1, the last good ones
    auto reloaded = make_trainer(dir / "reload", 16);
    reloaded.load_checkpoint(dir / "last.pt");
    for (const auto& p : reloaded.model()->parameters()) CHECK(torch::isfinite(p).all().item<bool>());
  }
}

TEST_CASE("model_checkpoint keeps the best k, the last, every n epochs") {
  // The monitored value of each epoch, set by a callback that runs before model_checkpoint.
  struct scripted_score {
    std::vector<double> values;
    void on_epoch_end(kiln::context& ctx) { ctx.metrics.set("val/score", values.at(static_cast<std::size_t>(ctx.epoch))); }
  };
  data d;
  auto files_in = [](const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<double> scores{3.0, 1.0, 4.0, 1.5, 5.0, 0.5, 2.0, 0.7};
  const std::int64_t batches = d.train_batches.size();
  auto name = [&](std::int64_t epoch) {  // 5 optimizer steps an epoch: 10 batches in windows of 2
    return "epoch-" + std::to_string(epoch) + "-step-" + std::to_string((epoch + 1) * batches / 2) + ".pt";
  };

  SUBCASE("mode min, k = 2") {
    const auto dir = fresh_dir("best2");
    kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::accumulate<2>{},
                    kiln::callbacks{scripted_score{scores}, kiln::model_checkpoint{.directory = dir, .monitor = "val/score", .keep_best = 2}}};
    t.fit(d.train_batches, d.val_batches, {.epochs = 8});
    CHECK(files_in(dir) == std::vector<std::string>{name(5), name(7), "last.pt"});
    const auto& kept = t.callback_list().get<kiln::model_checkpoint>();
    CHECK(kept.best_value() == 0.5);
    CHECK(kept.best_path() == dir / name(5));
    CHECK(kiln::read_checkpoint_info(kept.best_path()).epoch == 6);
    CHECK(kiln::read_checkpoint_info(dir / "last.pt").epoch == 8);
  }
  SUBCASE("mode max, every 2 epochs, no last") {
    const auto dir = fresh_dir("every2");
    kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::accumulate<2>{},
                    kiln::callbacks{scripted_score{scores},
                                    kiln::model_checkpoint{.directory = dir, .monitor = "val/score", .mode = kiln::mode::max,
                                                           .keep_best = 1, .keep_last = false, .every_n_epochs = 2}}};
    t.fit(d.train_batches, d.val_batches, {.epochs = 8});
    CHECK(files_in(dir) == std::vector<std::string>{name(3)});  // epochs 1, 3, 5, 7 score 1, 1.5, 0.5, 0.7
  }
  SUBCASE("keep every one") {
    const auto dir = fresh_dir("all");
    kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::accumulate<2>{},
                    kiln::callbacks{scripted_score{scores}, kiln::model_checkpoint{.directory = dir, .monitor = "val/score", .keep_best = -1}}};
    t.fit(d.train_batches, d.val_batches, {.epochs = 8});
    CHECK(files_in(dir).size() == 9);
  }
  SUBCASE("options are checked") {
    kiln::trainer t{kiln::backbone<kiln::test::Mlp>{},
                    kiln::callbacks{kiln::model_checkpoint{.directory = fresh_dir("opts"), .every_n_epochs = 0}}};
    CHECK(kiln::test::message_of([&] { t.fit(d.train_batches, d.val_batches); }) ==
          "kiln::model_checkpoint: every_n_epochs must be at least 1, got 0");
  }
}

TEST_CASE("backbone_finetuning unfreezes at its epoch with the rate ratio, keeping the optimizer's groups") {
  data d;
  torch::manual_seed(5);
  kiln::trainer t{kiln::backbone<kiln::test::BnNet>{}, kiln::freeze<2>{}, kiln::head{torch::nn::Linear(3, 3)},
                  kiln::sgd{.lr = 0.1},
                  kiln::callbacks{kiln::backbone_finetuning{.unfreeze_at_epoch = 2, .lr_ratio = 0.25}}};
  const auto groups_before = t.optimizer().param_groups().size();
  const auto first_group = t.optimizer().param_groups()[0].params();
  auto fc1 = t.backbone()->fc1->weight;
  auto bn_mean = t.backbone()->bn->running_mean;
  const auto fc1_before = fc1.clone(), mean_before = bn_mean.clone();

  t.fit(d.train_batches, d.val_batches, {.epochs = 2});
  CHECK(torch::equal(fc1, fc1_before));  // frozen for epochs 0 and 1
  CHECK(torch::equal(bn_mean, mean_before));
  CHECK(t.state().frozen.size() == 2);

  t.fit(d.train_batches, d.val_batches, {.epochs = 3});  // a new fit counts epochs from 0 again
  CHECK_FALSE(torch::equal(bn_mean, mean_before));  // epoch 2 of the second fit trained it
  CHECK_FALSE(torch::equal(fc1, fc1_before));
  CHECK(t.state().frozen.empty());
  CHECK(t.optimizer().param_groups().size() == groups_before);
  const auto& group = t.optimizer().param_groups()[0].params();
  REQUIRE(group.size() == first_group.size());
  for (std::size_t i = 0; i < group.size(); ++i) CHECK(group[i].is_same(first_group[i]));
  CHECK(t.optimizer().param_groups()[0].options().get_lr() == 0.1 * 0.25);
  CHECK(t.state().learning_rates == std::vector<double>{0.1 * 0.25, 0.1});
}
