// One process of the data-parallel tests (tests/distributed/run_tests.py starts them, under
// torchrun or by hand). Each scenario checks what it can see from inside a process and exits
// with 0 only when everything held; what failed is printed.
//
//   worker equality             W processes with batch B against one process with batch W·B, computed
//                               in each process: SGD and AdamW, with and without accumulate<3>,
//                               weights within 1e-6; validation loss and metrics (accuracy, F1,
//                               AUROC, confusion matrix; R², MAE) equal to one process's
//   worker mismatch             rank 1 builds a wider model: every process fails naming the tensor
//   worker die <dir>            rank 1 dies in its second epoch: rank 0 fails with a clear message
//   worker elastic <dir>        trains 4 epochs with a checkpoint per epoch, resuming from the last
//                               one if there is one; with KILN_TEST_KILL_AT=<epoch>, rank 1 of the
//                               first attempt kills itself in that epoch. Rank 0 writes the final
//                               weights to <dir>/final.txt
#include <kiln/distributed/data_parallel.hpp>
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

namespace fs = std::filesystem;

namespace {

struct NetImpl : torch::nn::Module {
  static constexpr std::size_t depth = 4;
  explicit NetImpl(std::int64_t hidden = 32) {
    fc1 = register_module("fc1", torch::nn::Linear(8, hidden));
    act = register_module("act", torch::nn::Tanh());
    fc2 = register_module("fc2", torch::nn::Linear(hidden, hidden));
    fc3 = register_module("fc3", torch::nn::Linear(hidden, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc3->forward(act->forward(fc2->forward(act->forward(fc1->forward(x))))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  torch::nn::Tanh act{nullptr};
};
TORCH_MODULE(Net);

int failures = 0;
std::int64_t rank_in_world = 0;

template <class... Parts>
std::string text(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::cerr << "rank " << rank_in_world << ": FAILED: " << what << '\n';
  }
}

struct toy {
  torch::Tensor x, y;
};
toy classification(std::int64_t n, std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto x = torch::randn({n, 8}, gen);
  return {x, x.narrow(1, 0, 3).argmax(1)};
}

double max_difference(torch::nn::Module& a, torch::nn::Module& b) {
  double worst = 0;
  const auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  return worst;
}

// The world's rank and size, from torchrun's environment.
std::int64_t env_int(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::stoll(v) : 0;
}

using metric_list = kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>, kiln::auroc<kiln::average::macro>,
                                  kiln::confusion_matrix>;

// W processes with batch B, against one process with batch W·B on the same data: each process
// trains both.
template <class Optimizer, std::size_t K>
void equality(std::string_view name, Optimizer optimizer, double bucket_mb) {
  const std::int64_t batch = 8;
  const auto train = classification(200, 1), val = classification(45, 2);  // 45: not a multiple of 2
  torch::manual_seed(7);
  kiln::trainer one{kiln::backbone<Net>{}, optimizer, kiln::accumulate<K>{}, metric_list{}};
  // Rank 0 starts from one's weights, the others from their own: the broadcast makes them rank 0's.
  torch::manual_seed(rank_in_world == 0 ? 7 : 100 + static_cast<std::uint64_t>(rank_in_world));
  kiln::trainer many{kiln::backbone<Net>{}, optimizer, kiln::accumulate<K>{}, metric_list{},
                     kiln::data_parallel<kiln::gloo>{.bucket_mb = bucket_mb, .first_bucket_mb = bucket_mb / 2}};
  const auto world = many.state().world_size;
  check(world == env_int("WORLD_SIZE") && many.state().rank == env_int("RANK"), "rank and world size from torchrun");

  kiln::data::tensor_batches one_train{train.x, train.y, {.batch_size = batch * world, .shuffle = true, .seed = 3}};
  one_train.shard(0, 1, kiln::data::shard_tail::pad);  // the sampler's order, as the processes see it
  kiln::data::tensor_batches one_val{val.x, val.y, {.batch_size = 16}};
  kiln::data::tensor_batches many_train{train.x, train.y, {.batch_size = batch, .shuffle = true, .seed = 3}};
  kiln::data::tensor_batches many_val{val.x, val.y, {.batch_size = 16}};

  const auto expected = one.fit(one_train, one_val, {.epochs = 3});
  const auto got = many.fit(many_train, many_val, {.epochs = 3});
  check(many_train.sharded() && many_val.sharded(), text(name, ": the trainer shards tensor_batches"));
  check(many_train.size() == one_train.size(), text(name, ": as many batches as one process"));
  const double weights = max_difference(*one.model(), *many.model());
  check(weights <= 1e-6, text(name, ": weights within 1e-6 of one process, differ by ", weights));
  for (std::size_t e = 0; e < expected.size(); ++e) {
    for (const auto& [key, value] : expected[e]) {
      const double theirs = got[e].at(key);
      const double tolerance = key.starts_with("train/") ? 1e-6 : 1e-6 * std::max(1.0, std::abs(value));
      check(std::abs(theirs - value) <= tolerance, text(name, ": epoch ", e, " ", key, " = ", theirs, ", one process: ", value));
    }
  }
  if (rank_in_world == 0) std::cout << name << ": weights differ by " << weights << '\n';
}

// Regression metrics (R² moves each process's sums to a common shift; MAE sums per output).
void regression() {
  auto gen = at::detail::createCPUGenerator(5);
  const auto x = torch::randn({64, 8}, gen);
  const auto y = x.narrow(1, 0, 2) * 3 + 10;  // a shift far from 0
  using metrics = kiln::metrics<kiln::r2_score, kiln::mean_absolute_error, kiln::root_mean_squared_error>;
  torch::manual_seed(9);
  kiln::trainer one{kiln::backbone<Net>{}, kiln::head{torch::nn::Linear(3, 2)}, kiln::mse{}, kiln::sgd{.lr = 0.01}, metrics{}};
  torch::manual_seed(9);
  kiln::trainer many{kiln::backbone<Net>{}, kiln::head{torch::nn::Linear(3, 2)}, kiln::mse{}, kiln::sgd{.lr = 0.01},
                     metrics{}, kiln::data_parallel<kiln::gloo>{}};
  kiln::data::tensor_batches one_val{x, y, {.batch_size = 10}}, many_val{x, y, {.batch_size = 10}};
  kiln::data::tensor_batches one_train{x, y, {.batch_size = 16}}, many_train{x, y, {.batch_size = 8}};
  one_train.shard(0, 1, kiln::data::shard_tail::pad);
  const auto expected = one.fit(one_train, one_val, {.epochs = 1});
  const auto got = many.fit(many_train, many_val, {.epochs = 1});
  for (const auto& [key, value] : expected[0]) {
    // The losses are float32 means of other batches; the metrics sum float64 on both sides.
    const double tolerance = (key.ends_with("/loss") ? 1e-6 : 1e-9) * std::max(1.0, std::abs(value));
    check(std::abs(got[0].at(key) - value) <= tolerance, text("regression: ", key, " = ", got[0].at(key), ", one process: ", value));
  }
}

int mismatch() {
  try {
    kiln::trainer t{kiln::backbone<Net>{Net(rank_in_world == 1 ? 48 : 32)}, kiln::data_parallel<kiln::gloo>{}};
    const auto data = classification(32, 1);
    kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 8}};
    t.fit(batches, {.epochs = 1});
  } catch (const kiln::distributed_error& e) {
    const std::string message = e.what();
    std::cout << "rank " << rank_in_world << ": " << message << '\n';
    check(message.find("parameter backbone.fc1.weight [32, 8]") != std::string::npos &&
              message.find("parameter backbone.fc1.weight [48, 8]") != std::string::npos && message.find("rank 1") != std::string::npos,
          "the error names the parameter, its shapes and the ranks");
    return failures == 0 ? 0 : 1;
  }
  check(false, "a model that differs between processes is an error");
  return 1;
}

// Ends the process at a given epoch and batch.
struct die_at {
  std::int64_t epoch, batch;
  int how;  // a signal, or 0 for _Exit(3)
  void on_batch_end(kiln::context& ctx) {
    if (ctx.epoch != epoch || ctx.batch != batch) return;
    std::cout << "rank " << ctx.rank << ": ending now, epoch " << epoch << " batch " << batch << std::endl;
    if (how == 0) std::_Exit(3);
    std::raise(how);
  }
};

int die(const fs::path&) {
  const auto data = classification(256, 1);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 8}};
  torch::manual_seed(1);
  kiln::trainer t{kiln::backbone<Net>{}, kiln::callbacks{die_at{rank_in_world == 1 ? 1 : -1, 2, 0}},
                  kiln::data_parallel<kiln::gloo>{.timeout = std::chrono::seconds{20}}};
  try {
    t.fit(batches, {.epochs = 3});
  } catch (const kiln::distributed_error& e) {
    std::cout << "rank " << rank_in_world << " stopped: " << e.what() << std::endl;
    return 42;  // the test expects this status from rank 0
  }
  std::cout << "rank " << rank_in_world << ": the fit ended although a process died\n";
  return 1;
}

int elastic(const fs::path& dir) {
  const auto data = classification(160, 4);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 8, .shuffle = true, .seed = 11}};
  const auto val = classification(30, 5);
  kiln::data::tensor_batches validation{val.x, val.y, {.batch_size = 8}};
  const auto attempt = env_int("TORCHELASTIC_RESTART_COUNT");
  const std::int64_t kill_epoch = std::getenv("KILN_TEST_KILL_AT") != nullptr && attempt == 0 && rank_in_world == 1
                                      ? env_int("KILN_TEST_KILL_AT") : -1;
  torch::manual_seed(2);
  kiln::trainer t{kiln::backbone<Net>{}, kiln::adamw{.lr = 0.01}, kiln::cosine_annealing{.t_max = 4},
                  kiln::metrics<kiln::accuracy>{},
                  kiln::callbacks{kiln::model_checkpoint{.directory = dir / "checkpoints", .monitor = "", .keep_best = 0},
                                  die_at{kill_epoch, 5, SIGKILL}},
                  kiln::data_parallel<kiln::gloo>{.timeout = std::chrono::seconds{60}}};
  kiln::fit_options options{.epochs = 4};
  if (fs::exists(dir / "checkpoints" / "last.pt")) {
    options.resume_from = dir / "checkpoints" / "last.pt";
    std::cout << "rank " << rank_in_world << " (attempt " << attempt << ") resumes from " << options.resume_from << std::endl;
  }
  const auto history = t.fit(train, validation, options);
  if (rank_in_world == 0) {
    std::ofstream out(dir / "final.txt");
    out.precision(17);
    for (const auto& p : t.model()->parameters()) {
      const auto flat = p.reshape({-1});
      for (std::int64_t i = 0; i < flat.numel(); ++i) out << flat[i].item<double>() << '\n';
    }
    out << "val/accuracy " << history.back().at("val/accuracy") << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string scenario = argc > 1 ? argv[1] : "";
  const fs::path dir = argc > 2 ? argv[2] : ".";
  rank_in_world = env_int("RANK");
  if (scenario == "equality") {
    equality<kiln::sgd, 1>("sgd", kiln::sgd{.lr = 0.1, .momentum = 0.9}, 25.0);
    equality<kiln::adamw, 1>("adamw", kiln::adamw{.lr = 0.01}, 25.0);
    equality<kiln::sgd, 3>("sgd, accumulate<3>", kiln::sgd{.lr = 0.1, .momentum = 0.9}, 25.0);
    equality<kiln::adamw, 3>("adamw, accumulate<3>, small buckets", kiln::adamw{.lr = 0.01}, 0.002);
    regression();
    return failures == 0 ? 0 : 1;
  }
  if (scenario == "mismatch") return mismatch();
  if (scenario == "die") return die(dir);
  if (scenario == "elastic") return elastic(dir);
  std::cerr << "usage: worker equality|mismatch|die <dir>|elastic <dir>\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "rank " << rank_in_world << ": " << e.what() << '\n';
  return 1;
}
