#include "../support.hpp"

using kiln::test::Mlp;

TEST_CASE("a kiln run equals a hand-written LibTorch loop bit for bit") {
  auto data = kiln::test::make_toy(200, 1);
  kiln::data::batch_options opts{.batch_size = 16, .shuffle = true, .seed = 7};

  torch::manual_seed(42);
  Mlp kiln_net;
  kiln::trainer t{kiln::backbone<Mlp>{.module = kiln_net},
                  kiln::sgd{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4}};
  kiln::data::tensor_batches kiln_batches{data.x, data.y, opts};
  auto history = t.fit(kiln_batches, {.epochs = 3});

  torch::manual_seed(42);
  Mlp hand_net;
  torch::optim::SGD optimizer(hand_net->parameters(),
                              torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-4));
  kiln::data::tensor_batches hand_batches{data.x, data.y, opts};
  double last_epoch_loss = 0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    hand_net->train();
    double sum = 0;
    std::int64_t n = 0;
    for (const auto& batch : hand_batches) {
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(hand_net->forward(batch.data), batch.target);
      loss.backward();
      optimizer.step();
      sum += loss.item<double>() * batch.data.size(0);
      n += batch.data.size(0);
    }
    last_epoch_loss = sum / n;
  }

  CHECK(kiln::test::same_state(kiln_net, hand_net));
  REQUIRE(history.size() == 3);
  CHECK(history.back().at("train/loss") == doctest::Approx(last_epoch_loss).epsilon(1e-12));
  CHECK(t.state().step == 3 * 13);  // 200 samples in batches of 16: 13 steps per epoch
}

TEST_CASE("validation runs in eval mode without gradients; training in train mode") {
  struct mode_probeImpl : torch::nn::Module {
    mode_probeImpl() { fc = register_module("fc", torch::nn::Linear(8, 3)); }
    torch::Tensor forward(const torch::Tensor& x) {
      (is_training() ? train_calls : eval_calls) += 1;
      if (!is_training()) grad_in_eval = grad_in_eval || torch::GradMode::is_enabled();
      return fc->forward(x);
    }
    torch::nn::Linear fc{nullptr};
    int train_calls = 0, eval_calls = 0;
    bool grad_in_eval = false;
  };
  TORCH_MODULE(mode_probe);
  auto data = kiln::test::make_toy(64);
  mode_probe probe;
  kiln::trainer t{kiln::backbone<mode_probe>{.module = probe}, kiln::metrics<kiln::accuracy>{}};
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  kiln::data::tensor_batches val{data.x, data.y, {.batch_size = 32}};
  auto history = t.fit(train, val, {.epochs = 2});
  CHECK(probe->train_calls == 8);
  CHECK(probe->eval_calls == 4);
  CHECK_FALSE(probe->grad_in_eval);
  CHECK(history.back().contains("val/loss"));
  CHECK(history.back().contains("val/accuracy"));

  auto out = t.predict(val);
  CHECK(out.sizes() == torch::IntArrayRef{64, 3});
  CHECK_FALSE(out.requires_grad());
  CHECK(probe->eval_calls == 6);

  // predict accepts bare input tensors too
  std::vector<torch::Tensor> inputs{data.x.narrow(0, 0, 10), data.x.narrow(0, 10, 5)};
  CHECK(t.predict(inputs).size(0) == 15);
}

TEST_CASE("validate reports the loss and metrics that match a direct computation") {
  auto data = kiln::test::make_toy(100, 3);
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::metrics<kiln::accuracy>{}};
  kiln::data::tensor_batches val{data.x, data.y, {.batch_size = 30}};
  auto values = t.validate(val);
  torch::NoGradGuard no_grad;
  auto logits = t.model()->forward(data.x);
  CHECK(values.at("val/loss") ==
        doctest::Approx(torch::nn::functional::cross_entropy(logits, data.y).item<double>()).epsilon(1e-6));
  CHECK(values.at("val/accuracy") ==
        doctest::Approx(logits.argmax(1).eq(data.y).to(torch::kDouble).mean().item<double>()));
}

TEST_CASE("LibTorch data loaders and pairs of tensors are batches") {
  auto data = kiln::test::make_toy(96);
  // A plain torch::data pipeline over Example<> with Stack<>.
  struct rows : torch::data::datasets::Dataset<rows> {
    torch::Tensor x, y;
    rows(torch::Tensor x_, torch::Tensor y_) : x(std::move(x_)), y(std::move(y_)) {}
    torch::data::Example<> get(size_t i) override { return {x[i], y[i]}; }
    torch::optional<size_t> size() const override { return x.size(0); }
  };
  auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
      rows{data.x, data.y}.map(torch::data::transforms::Stack<>()), torch::data::DataLoaderOptions(32));
  torch::manual_seed(1);
  kiln::trainer t{kiln::backbone<Mlp>{}};
  auto history = t.fit(*loader, {.epochs = 1});
  CHECK(t.state().step == 3);

  std::vector<std::pair<torch::Tensor, torch::Tensor>> pairs{{data.x.narrow(0, 0, 48), data.y.narrow(0, 0, 48)},
                                                             {data.x.narrow(0, 48, 48), data.y.narrow(0, 48, 48)}};
  t.fit(pairs, {.epochs = 1});
  CHECK(t.state().step == 3 + 2);  // the step count goes on across fits
}

TEST_CASE("runtime options are checked where they enter") {
  auto message = [](auto make) {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      return std::string{e.what()};
    }
    return std::string{"no error"};
  };
  CHECK(message([] { kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sgd{.lr = -1}}; }) ==
        "kiln::sgd: lr must be a finite number >= 0, got -1");
  CHECK(message([] { kiln::trainer t{kiln::backbone<Mlp>{}, kiln::adam{.beta1 = 1.0}}; }) ==
        "kiln::adam: beta1 must be in [0, 1), got 1");
  CHECK(message([] { kiln::trainer t{kiln::backbone<Mlp>{}, kiln::cross_entropy{.label_smoothing = 1.5}}; }) ==
        "kiln::cross_entropy: label_smoothing must be in [0, 1], got 1.5");
  CHECK(message([] { kiln::trainer t{kiln::backbone<Mlp>{}, kiln::step_lr{.step_size = 0}}; }) ==
        "kiln::step_lr: step_size must be at least 1, got 0");
  CHECK(message([] {
          auto data = kiln::test::make_toy(8);
          kiln::trainer t{kiln::backbone<Mlp>{}};
          t.fit(kiln::data::tensor_batches{data.x, data.y}, {.epochs = 0});
        }) == "kiln::fit: epochs must be at least 1, got 0");
  CHECK(message([] {
          kiln::trainer t{kiln::backbone<Mlp>{}};
          std::vector<std::pair<torch::Tensor, torch::Tensor>> none;
          t.fit(none);
        }) == "kiln::trainer::fit: the training data produced no batches");
  CHECK(message([] { kiln::data::tensor_batches b{torch::zeros({4, 2}), torch::zeros({5})}; })
            .starts_with("kiln::data::tensor_batches: inputs and targets must have the same first dimension"));
}

TEST_CASE("step_lr advances per epoch or per optimizer step, first decay at t = step_size") {
  auto data = kiln::test::make_toy(64);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  struct record_lr {
    std::vector<double>* seen;
    void on_batch_begin(kiln::context& ctx) { seen->push_back(ctx.learning_rates[0]); }
  };
  std::vector<double> per_epoch, per_step;
  kiln::trainer a{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 1.0}, kiln::step_lr{.step_size = 2, .gamma = 0.5},
                  kiln::callbacks{record_lr{&per_epoch}}};
  a.fit(batches, {.epochs = 3});
  kiln::trainer b{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 1.0},
                  kiln::step_lr{.step_size = 3, .gamma = 0.1, .interval = kiln::interval::step},
                  kiln::callbacks{record_lr{&per_step}}};
  b.fit(batches, {.epochs = 2});
  const std::vector<double> epoch_expected{1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5};
  CHECK(per_epoch == epoch_expected);
  REQUIRE(per_step.size() == 8);
  const std::vector<double> step_expected{1, 1, 1, 0.1, 0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1};
  for (std::size_t i = 0; i < 8; ++i) CHECK(per_step[i] == doctest::Approx(step_expected[i]).epsilon(1e-15));
  CHECK(b.optimizer().param_groups()[0].options().get_lr() == doctest::Approx(0.01));
}

TEST_CASE("a head adds a second parameter group at lr × backbone lr_ratio") {
  kiln::trainer t{kiln::backbone<Mlp>{.lr_ratio = 0.1}, kiln::head{torch::nn::Linear(3, 2)},
                  kiln::sgd{.lr = 0.5}};
  auto& groups = t.optimizer().param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].options().get_lr() == doctest::Approx(0.05));
  CHECK(groups[1].options().get_lr() == doctest::Approx(0.5));
  CHECK(groups[0].params().size() == 4);
  CHECK(groups[1].params().size() == 2);
  CHECK(t.model()->forward(torch::zeros({5, 8})).sizes() == torch::IntArrayRef{5, 2});
}

// LibTorch 2.x gives a group's option that equals its options class's default (SGD's and Adam's
// lr 1e-3, RMSprop's and Adagrad's 1e-2) the optimizer's default instead: a backbone rate that
// happens to equal that default must stay what lr × lr_ratio says.
TEST_CASE("a backbone rate equal to LibTorch's default rate is kept, with every optimizer") {
  auto check = [](const char* name, auto optimizer, double libtorch_default) {
    INFO(name, ", LibTorch's default rate ", libtorch_default);
    optimizer.lr = 2 * libtorch_default;  // × 0.5 is exact
    kiln::trainer t{kiln::backbone<Mlp>{.lr_ratio = 0.5}, kiln::head{torch::nn::Linear(3, 2)}, optimizer};
    auto& groups = t.optimizer().param_groups();
    REQUIRE(groups.size() == 2);
    CHECK(groups[0].options().get_lr() == libtorch_default);
    CHECK(groups[1].options().get_lr() == 2 * libtorch_default);
  };
  check("sgd", kiln::sgd{}, 1e-3);
  check("adam", kiln::adam{}, 1e-3);
  check("adamw", kiln::adamw{}, 1e-3);
  check("rmsprop", kiln::rmsprop{}, 1e-2);
  check("adagrad", kiln::adagrad{}, 1e-2);
}
