#include "../support.hpp"

using kiln::test::Mlp;

namespace {
// Trains a copy of `init` with batch size `batch` and accumulate<K>, without shuffling.
template <std::size_t K>
std::vector<torch::Tensor> train(const Mlp& init, const kiln::test::toy_data& data, std::int64_t batch, int epochs) {
  Mlp net;
  {
    torch::NoGradGuard no_grad;
    auto src = init->parameters();
    auto dst = net->parameters();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  kiln::trainer t{kiln::backbone<Mlp>{.module = net}, kiln::sgd{.lr = 0.1, .momentum = 0.9},
                  kiln::accumulate<K>{}};
  t.fit(kiln::data::tensor_batches{data.x, data.y, {.batch_size = batch}}, {.epochs = epochs});
  return kiln::test::snapshot(net->parameters());
}
}  // namespace

TEST_CASE("accumulate<K> with batch B trains like batch K·B") {
  torch::manual_seed(0);
  Mlp init;
  auto data = kiln::test::make_toy(256, 11);  // 256 = 4 · 4 · 16: whole windows only
  const auto accumulated = train<4>(init, data, 16, 2);
  const auto large_batch = train<1>(init, data, 64, 2);
  const auto small_batch = train<1>(init, data, 16, 2);
  CHECK(kiln::test::max_abs_diff(accumulated, large_batch) <= 1e-6);
  CHECK(kiln::test::max_abs_diff(small_batch, large_batch) > 1e-3);  // the comparison can fail
}

TEST_CASE("the last, partial window is stepped and scaled by its real size") {
  torch::manual_seed(1);
  Mlp init;
  // 80 samples, batch 16: 5 batches; with K = 3 the windows are 3 batches, then 2.
  auto data = kiln::test::make_toy(80, 12);
  const auto accumulated = train<3>(init, data, 16, 1);

  // The same by hand: one step on the first 48 samples, one on the last 32.
  Mlp net;
  {
    torch::NoGradGuard no_grad;
    auto src = init->parameters();
    auto dst = net->parameters();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  for (auto [start, length] : {std::pair<std::int64_t, std::int64_t>{0, 48}, {48, 32}}) {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(data.x.narrow(0, start, length)),
                                         data.y.narrow(0, start, length))
        .backward();
    opt.step();
  }
  CHECK(kiln::test::max_abs_diff(accumulated, net->parameters()) <= 1e-6);
}

TEST_CASE("accumulate<K> takes one optimizer step per K batches, plus the partial window") {
  auto data = kiln::test::make_toy(112);  // 7 batches of 16
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::accumulate<3>{}};
  t.fit(kiln::data::tensor_batches{data.x, data.y, {.batch_size = 16}}, {.epochs = 2});
  CHECK(t.state().step == 2 * 3);  // windows of 3, 3, 1 batches per epoch
}
