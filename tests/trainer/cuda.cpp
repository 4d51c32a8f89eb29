// The trainer on a CUDA device: model, data and metrics there, batches copied without blocking,
// no synchronisation inside a step. Each test says so and returns where there is no device.
#include "../cuda_support.hpp"
#include "../support.hpp"

TEST_CASE("pin_memory without a CUDA device, or on tensors not in CPU memory, is refused clearly") {
  auto data = kiln::test::make_toy(32);
  if (!torch::cuda::is_available()) {
    CHECK_THROWS_WITH(kiln::data::tensor_batches(data.x, data.y, {.pin_memory = true}),
                      "kiln::data::tensor_batches: pin_memory needs a CUDA device (page-locked memory "
                      "speeds up copies to one), and LibTorch sees none here; leave pin_memory false");
    return;
  }
  CHECK_THROWS_WITH(kiln::data::tensor_batches(data.x.cuda(), data.y.cuda(), {.pin_memory = true}),
                    doctest::Contains("pin_memory page-locks tensors in CPU memory, but these are on cuda:0"));
}

TEST_CASE("pinned batches stay page-locked, shuffled or not") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  auto data = kiln::test::make_toy(40);
  for (const bool shuffle : {false, true}) {
    kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16, .shuffle = shuffle, .pin_memory = true}};
    std::int64_t rows = 0;
    for (const auto& b : batches) {
      CHECK(b.data.is_pinned());
      CHECK(b.target.is_pinned());
      rows += b.data.size(0);
    }
    CHECK(rows == 40);
  }
}

TEST_CASE("a fit on CUDA (pinned CPU data, metrics on the device) equals the same fit on the CPU") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  auto data = kiln::test::make_toy(256, 3);
  auto val = kiln::test::make_toy(64, 4);
  auto run = [&](const torch::Device& device, bool pin, std::int64_t* checked) {
    torch::manual_seed(21);
    kiln::test::Mlp net(8, 32, 3);
    kiln::trainer t{kiln::backbone<kiln::test::Mlp>{.module = net}, kiln::sgd{.lr = 0.05, .momentum = 0.9},
                    kiln::metrics<kiln::accuracy>{}, kiln::callbacks{kiln::test::forbid_sync{0, checked}}};
    t.to(device);
    kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 32, .shuffle = true, .seed = 2, .pin_memory = pin}};
    kiln::data::tensor_batches valid{val.x, val.y, {.batch_size = 32, .pin_memory = pin}};
    auto history = t.fit(train, valid, {.epochs = 3});
    return std::pair{history, net};
  };
  std::int64_t checked = 0;
  const kiln::test::sync_debug_off_at_exit off;
  const bool armed = kiln::test::sync_debug_works();
  if (!armed) MESSAGE("LibTorch's sync debug mode cannot be armed from here: synchronisation is not checked");
  auto [gpu_history, gpu_net] = run(cuda, true, &checked);
  auto [cpu_history, cpu_net] = run(torch::kCPU, false, nullptr);
  CHECK(checked == 3 * 7);  // every step but each epoch's first ran with synchronisation forbidden

  double largest = 0;
  for (const auto& p : gpu_net->named_parameters()) {
    largest = std::max(largest, (p.value().cpu() - cpu_net->named_parameters()[p.key()]).abs().max().item<double>());
  }
  MESSAGE("largest weight difference CUDA vs CPU: " << largest);
  CHECK(largest <= 1e-5);
  CHECK(gpu_history.back().at("val/loss") == doctest::Approx(cpu_history.back().at("val/loss")).epsilon(1e-5));
  CHECK(gpu_history.back().at("val/accuracy") == cpu_history.back().at("val/accuracy"));
  CHECK(gpu_net->fc1->weight.device() == cuda);
}
