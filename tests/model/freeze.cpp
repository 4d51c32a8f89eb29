#include "../support.hpp"

using kiln::test::BnNet;

TEST_CASE("freeze<N>: frozen weights and BatchNorm statistics stay bit-identical, the rest trains") {
  auto data = kiln::test::make_toy(128, 5);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16, .shuffle = true, .seed = 3}};
  torch::manual_seed(0);
  BnNet net;
  // Move the running statistics away from their initial values first, so that "unchanged"
  // cannot be satisfied by statistics that were never touched.
  {
    kiln::trainer warmup{kiln::backbone<BnNet>{.module = net}, kiln::sgd{.lr = 0.1}};
    warmup.fit(batches, {.epochs = 1});
  }
  const auto fc1 = kiln::test::snapshot(net->fc1->parameters());
  const auto bn_params = kiln::test::snapshot(net->bn->parameters());
  const auto bn_stats = kiln::test::snapshot(net->bn->buffers());
  const auto fc2 = kiln::test::snapshot(net->fc2->parameters());

  kiln::trainer t{kiln::backbone<BnNet>{.module = net}, kiln::freeze<2>{}, kiln::sgd{.lr = 0.1, .momentum = 0.9}};
  const auto groups_before = t.optimizer().param_groups()[0].params().size();
  t.fit(batches, {.epochs = 2});

  CHECK(kiln::test::max_abs_diff(fc1, net->fc1->parameters()) == 0.0);
  CHECK(kiln::test::max_abs_diff(bn_params, net->bn->parameters()) == 0.0);
  CHECK(kiln::test::max_abs_diff(bn_stats, net->bn->buffers()) == 0.0);
  CHECK(kiln::test::max_abs_diff(fc2, net->fc2->parameters()) > 1e-3);
  for (const auto& p : net->fc1->parameters()) CHECK_FALSE(p.grad().defined());
  // The frozen parameters stay in the optimizer's groups: unfreezing needs no new group.
  CHECK(t.optimizer().param_groups().size() == 1);
  CHECK(t.optimizer().param_groups()[0].params().size() == groups_before);
  CHECK(groups_before == net->parameters().size());
  // Frozen children are in eval mode during training, the others in train mode.
  struct check_modes {
    BnNet net;
    bool ok = false;
    void on_batch_end(kiln::context&) { ok = !net->bn->is_training() && net->fc2->is_training(); }
  };
  kiln::trainer again{kiln::backbone<BnNet>{.module = net}, kiln::freeze<2>{}, kiln::callbacks{check_modes{net}}};
  again.fit(batches, {.epochs = 1});
  CHECK(again.callback_list().get<check_modes>().ok);
}

TEST_CASE("freeze<N> beyond the backbone's children is an error when its depth is unknown") {
  auto make = [] { kiln::trainer t{kiln::backbone<BnNet>{}, kiln::freeze<5>{}}; };
  CHECK_THROWS_WITH_AS(make(), "kiln::freeze<5>: the backbone has only 4 top-level children; freeze at most 4",
                       std::invalid_argument);
}

TEST_CASE("freeze<0> trains everything") {
  torch::manual_seed(0);
  BnNet net;
  const auto before = kiln::test::snapshot(net->parameters());
  auto data = kiln::test::make_toy(64);
  kiln::trainer t{kiln::backbone<BnNet>{.module = net}, kiln::sgd{.lr = 0.1}};
  t.fit(kiln::data::tensor_batches{data.x, data.y, {.batch_size = 16}}, {.epochs = 1});
  const auto after = net->parameters();
  for (std::size_t i = 0; i < before.size(); ++i) CHECK_FALSE(torch::equal(before[i], after[i]));
}
