// kiln::mixed_precision against hand-written LibTorch loops under LibTorch's own autocast calls.
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>

#include "scaler_support.hpp"

namespace {

// LibTorch's autocast switched on and off directly, as Python's torch.autocast does it: the
// hand-written side of the comparisons (kiln's side is kiln::autocast_guard).
struct raw_autocast {
  c10::DeviceType device;
  raw_autocast(c10::DeviceType d, c10::ScalarType dtype) : device(d) {
    set(true, dtype);
    at::autocast::increment_nesting();
  }
  ~raw_autocast() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set(false, device == c10::DeviceType::CUDA ? torch::kHalf : torch::kBFloat16);  // LibTorch's defaults
  }
  void set(bool on, c10::ScalarType dtype) const {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(device, on);
    at::autocast::set_autocast_dtype(device, dtype);
#else
    if (device == c10::DeviceType::CUDA) {
      at::autocast::set_enabled(on);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      at::autocast::set_cpu_enabled(on);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
#endif
  }
};

struct DtypeProbeImpl : torch::nn::Module {
  DtypeProbeImpl() { fc = register_module("fc", torch::nn::Linear(8, 3)); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = fc->forward(x);
    seen = out.scalar_type();
    return out;
  }
  torch::nn::Linear fc{nullptr};
  c10::ScalarType seen = c10::ScalarType::Undefined;
};
TORCH_MODULE(DtypeProbe);

// A fit under kiln::mixed_precision<bf16> and the same loop by hand under autocast, on `device`.
void bf16_equals_hand_loop(const torch::Device& device) {
  auto data = kiln::test::make_toy(96, 2);
  const kiln::data::batch_options opts{.batch_size = 16, .shuffle = true, .seed = 3};
  const auto x = data.x.to(device), y = data.y.to(device);

  torch::manual_seed(4);
  kiln::test::Mlp kiln_net(8, 32, 3);
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{.module = kiln_net}, kiln::sgd{.lr = 0.1, .momentum = 0.9},
                  kiln::mixed_precision<kiln::bf16>{}};
  t.to(device);
  kiln::data::tensor_batches kiln_batches{x, y, opts};
  t.fit(kiln_batches, {.epochs = 2});

  torch::manual_seed(4);
  kiln::test::Mlp hand_net(8, 32, 3);
  hand_net->to(device);
  torch::optim::SGD optimizer(hand_net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  kiln::data::tensor_batches hand_batches{x, y, opts};
  for (int epoch = 0; epoch < 2; ++epoch) {
    hand_net->train();
    for (const auto& batch : hand_batches) {
      optimizer.zero_grad();
      torch::Tensor loss;
      {
        raw_autocast on{device.type(), torch::kBFloat16};
        loss = torch::nn::functional::cross_entropy(hand_net->forward(batch.data), batch.target);
      }
      loss.backward();
      optimizer.step();
    }
  }
  CHECK(kiln::test::same_state(kiln_net, hand_net));

  torch::manual_seed(4);  // and autocast mattered: full precision ends elsewhere
  kiln::test::Mlp full_net(8, 32, 3);
  kiln::trainer full{kiln::backbone<kiln::test::Mlp>{.module = full_net}, kiln::sgd{.lr = 0.1, .momentum = 0.9}};
  full.to(device);
  kiln::data::tensor_batches full_batches{x, y, opts};
  full.fit(full_batches, {.epochs = 2});
  CHECK_FALSE(kiln::test::same_state(kiln_net, full_net));
}

}  // namespace

TEST_CASE("mixed_precision<bf16> on the CPU equals a hand-written loop under autocast, bit for bit") {
  bf16_equals_hand_loop(torch::kCPU);
}

TEST_CASE("mixed_precision<bf16> runs the forward pass in bfloat16 and leaves autocast off afterwards") {
  DtypeProbe probe;
  kiln::trainer t{kiln::backbone<DtypeProbe>{.module = probe}, kiln::mixed_precision<kiln::bf16>{}};
  auto data = kiln::test::make_toy(32);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  t.fit(train, train);
  CHECK((probe->seen == torch::kFloat));  // validation runs in full precision
  t.fit(train);
  CHECK((probe->seen == torch::kBFloat16));
  CHECK_FALSE(kiln::detail::autocast_enabled(c10::DeviceType::CPU));
  CHECK((probe->fc->weight.scalar_type() == torch::kFloat));  // weights stay float32
}

TEST_CASE("autocast_guard nests and puts back the state it found") {
  CHECK_FALSE(kiln::detail::autocast_enabled(c10::DeviceType::CPU));
  auto w = torch::randn({4, 4});
  {
    kiln::autocast_guard outer{c10::DeviceType::CPU, torch::kBFloat16};
    {
      kiln::autocast_guard inner{c10::DeviceType::CPU, torch::kBFloat16};
      CHECK((torch::matmul(w, w).scalar_type() == torch::kBFloat16));
    }
    CHECK(kiln::detail::autocast_enabled(c10::DeviceType::CPU));  // the inner scope ended, not the outer
    CHECK((torch::matmul(w, w).scalar_type() == torch::kBFloat16));
  }
  CHECK_FALSE(kiln::detail::autocast_enabled(c10::DeviceType::CPU));
  CHECK((torch::matmul(w, w).scalar_type() == torch::kFloat));
}

TEST_CASE("mixed_precision options are checked where they enter") {
  CHECK_THROWS_WITH(kiln::trainer(kiln::backbone<kiln::test::Mlp>{},
                                  kiln::mixed_precision<kiln::fp16>{.backoff_factor = 2.0}),
                    "kiln::grad_scaler: backoff_factor must be in (0, 1), got 2");
#if TORCH_VERSION_MAJOR < 2
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::mixed_precision<kiln::fp16>{}};
  auto data = kiln::test::make_toy(16);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  CHECK_THROWS_WITH(t.fit(train), doctest::Contains("autocasts to bfloat16 only on the CPU; use "
                                                    "kiln::mixed_precision<kiln::bf16> there"));
#endif
}

TEST_CASE("mixed_precision<bf16> on CUDA equals a hand-written loop under autocast, bit for bit") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  bf16_equals_hand_loop(torch::Device(torch::kCUDA, 0));
}

TEST_CASE("mixed_precision<fp16> on CUDA equals a hand loop with PyTorch's own scaling kernels") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  auto data = kiln::test::make_toy(160, 6);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  for (std::int64_t b = 0; b < 10; ++b) {
    auto x = data.x.narrow(0, b * 16, 16).clone();
    if (b == 3 || b == 7) x[0][0] = std::nan("");  // two steps to skip
    batches.emplace_back(x.to(cuda), data.y.narrow(0, b * 16, 16).to(cuda));
  }
  const double init_scale = 1024.0, growth = 2.0, backoff = 0.5;
  const std::int64_t interval = 2;

  torch::manual_seed(8);
  kiln::test::Mlp kiln_net(8, 32, 3);
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{.module = kiln_net}, kiln::sgd{.lr = 0.1, .momentum = 0.9},
                  kiln::mixed_precision<kiln::fp16>{.init_scale = init_scale, .growth_factor = growth,
                                                    .backoff_factor = backoff, .growth_interval = interval}};
  t.to(cuda);
  t.fit(batches, {.epochs = 2});

  torch::manual_seed(8);
  kiln::test::Mlp hand_net(8, 32, 3);
  hand_net->to(cuda);
  torch::optim::SGD optimizer(hand_net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  auto scale = torch::full({1}, init_scale, torch::TensorOptions(cuda).dtype(torch::kFloat));
  auto tracker = torch::zeros({1}, torch::TensorOptions(cuda).dtype(torch::kInt));
  std::int64_t steps = 0;
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (const auto& [x, y] : batches) {
      optimizer.zero_grad();
      torch::Tensor loss;
      {
        raw_autocast on{c10::DeviceType::CUDA, torch::kHalf};
        loss = torch::nn::functional::cross_entropy(hand_net->forward(x), y);
      }
      (loss * scale).backward();
      std::vector<torch::Tensor> grads;
      for (auto& p : hand_net->parameters()) grads.push_back(p.grad());
      auto found_inf = torch::zeros({1}, torch::TensorOptions(cuda).dtype(torch::kFloat));
      at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, scale.to(torch::kDouble).reciprocal().to(torch::kFloat));
      if (found_inf.item<float>() == 0.0F) {
        optimizer.step();
        ++steps;
      }
      at::_amp_update_scale_(scale, tracker, found_inf, growth, backoff, interval);
    }
  }
  CHECK(kiln::test::same_state(kiln_net, hand_net));
  CHECK(t.state().step == steps);
  CHECK(t.precision().skipped_steps() == 4);
  CHECK(t.precision().scaler().state().scale == scale.item<double>());
}
