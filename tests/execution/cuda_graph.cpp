// kiln::cuda_graph: the captured step against kiln's eager step. Without CUDA, only the errors.
#include <kiln/callbacks/gradient_clipping.hpp>
#include <kiln/execution/cuda_graph.hpp>

#include "../cuda_support.hpp"
#include "../support.hpp"

namespace {

struct MnistMlpImpl : torch::nn::Module {
  MnistMlpImpl() : fc1(register_module("fc1", torch::nn::Linear(784, 256))), fc2(register_module("fc2", torch::nn::Linear(256, 10))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::relu(fc1->forward(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(MnistMlp);

double largest_difference(MnistMlp& a, MnistMlp& b) {
  double largest = 0;
  for (const auto& p : a->named_parameters()) {
    largest = std::max(largest, (p.value() - b->named_parameters()[p.key()]).abs().max().item<double>());
  }
  return largest;
}

}  // namespace

TEST_CASE("cuda_graph says why it cannot run where there is no CUDA") {
  auto data = kiln::test::make_toy(32);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{}, kiln::cuda_graph{}};
#if KILN_HAS_CUDA_GRAPHS
  CHECK_THROWS_WITH(t.fit(train), "kiln::cuda_graph: the batch is on cpu; a captured step runs on a CUDA device: "
                                  "call trainer.to(torch::kCUDA) before fit");
#else
  CHECK_THROWS_WITH(t.fit(train), doctest::Contains("kiln::cuda_graph: this program was compiled without the CUDA "
                                                    "headers (<cuda_runtime_api.h> and LibTorch's "
                                                    "c10/cuda/impl/cuda_cmake_macros.h)"));
#endif
  CHECK_THROWS_WITH(kiln::trainer(kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{}, kiln::cuda_graph{.warmup_steps = 0}),
                    "kiln::cuda_graph: warmup_steps must be at least 1, got 0");
}

TEST_CASE("a captured step trains like the eager one: 784-256-10 MLP, SGD with momentum, clipping, bf16") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  torch::manual_seed(0);
  const auto x = torch::randn({64 * 24, 784}).to(cuda);
  const auto y = torch::randint(0, 10, {64 * 24}).to(cuda);
  const kiln::test::sync_debug_off_at_exit off;
  const bool armed = kiln::test::sync_debug_works();
  if (!armed) MESSAGE("LibTorch's sync debug mode cannot be armed from here: synchronisation is not checked");

  auto eager_and_captured = [&](auto precision, auto clipping, double tolerance) {
    torch::manual_seed(3);
    MnistMlp eager_net;
    kiln::trainer eager{kiln::backbone<MnistMlp>{.module = eager_net}, kiln::sgd{.lr = 0.01, .momentum = 0.9}, precision,
                        kiln::callbacks{clipping}};
    eager.to(cuda);
    kiln::data::tensor_batches eager_batches{x, y, {.batch_size = 64, .shuffle = true, .seed = 5}};
    eager.fit(eager_batches, {.epochs = 3});

    torch::manual_seed(3);
    MnistMlp captured_net;
    std::int64_t checked = 0;
    kiln::trainer captured{kiln::backbone<MnistMlp>{.module = captured_net}, kiln::sgd{.lr = 0.01, .momentum = 0.9},
                           precision, kiln::cuda_graph{}, kiln::callbacks{clipping, kiln::test::forbid_sync{1, &checked}}};
    captured.to(cuda);
    kiln::data::tensor_batches captured_batches{x, y, {.batch_size = 64, .shuffle = true, .seed = 5}};
    auto history = captured.fit(captured_batches, {.epochs = 3});
    CHECK(captured.execution().captured());
    CHECK(captured.state().step == 3 * 24);
    CHECK(checked == 2 * 23);
    const double largest = largest_difference(eager_net, captured_net);
    MESSAGE("largest weight difference, captured vs eager: " << largest);
    CHECK(largest <= tolerance);
    CHECK(std::isfinite(history.back().at("train/loss")));
  };
  SUBCASE("float32") { eager_and_captured(kiln::full_precision{}, kiln::clip_grad_norm{.max_norm = 1e9}, 1e-5); }
  SUBCASE("float32, gradients clipped inside the graph") {
    eager_and_captured(kiln::full_precision{}, kiln::clip_grad_norm{.max_norm = 0.5}, 1e-5);
  }
  SUBCASE("bf16 autocast inside the graph") {
    eager_and_captured(kiln::mixed_precision<kiln::bf16>{}, kiln::clip_grad_value{.clip_value = 1e9}, 1e-5);
  }
}

TEST_CASE("a captured step refuses a batch of another shape, and says what to do") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  const auto x = torch::randn({64 * 5 + 7, 784}).to(cuda);
  const auto y = torch::randint(0, 10, {64 * 5 + 7}).to(cuda);
  kiln::trainer t{kiln::backbone<MnistMlp>{}, kiln::sgd{}, kiln::cuda_graph{.warmup_steps = 2}};
  t.to(cuda);
  kiln::data::tensor_batches ragged{x, y, {.batch_size = 64}};
  CHECK_THROWS_WITH(t.fit(ragged), doctest::Contains("a captured step replays fixed shapes: give every batch the same "
                                                     "size (kiln::data::batch_options{.drop_last = true})"));
  kiln::data::tensor_batches even{x, y, {.batch_size = 64, .drop_last = true}};
  t.fit(even);  // the graph captured before the refusal goes on with full batches
  CHECK(t.execution().captured());
}
