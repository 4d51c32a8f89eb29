// One whole training run, by kiln and by a plain PyTorch script (tests/reference/torch_digits_run.py),
// from the same initial weights and the same batches: an MLP on scikit-learn's digits table, SGD
// with momentum and weight decay, label smoothing, linear warmup then cosine annealing per
// optimizer step, accumulate<2>. The final weights must agree within 1e-5; the loss of every
// epoch is printed side by side.
#include <cstdio>
#include <string>

#include "../reference/reference.hpp"
#include "../support.hpp"

namespace {

using nlohmann::json;

json to_json(const torch::Tensor& t) {
  const auto flat = t.detach().contiguous().reshape({-1});
  return {{"shape", t.sizes().vec()},
          {"data", std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel())}};
}

torch::Tensor from_json(const json& values, torch::ScalarType type) {
  if (type == torch::kLong) return torch::tensor(values.get<std::vector<std::int64_t>>(), torch::kLong);
  return torch::tensor(values.get<std::vector<double>>(), torch::kDouble);
}

}  // namespace

TEST_CASE("a whole run on the digits table equals PyTorch's: final weights within 1e-5") {
  // 1792 of the 1797 digits: 56 batches of 32, 28 windows of two, so no partial window.
  const std::int64_t hidden = 32, batch_size = 32, samples = 1792, epochs = 10, steps_per_epoch = 28;
  const std::int64_t warmup = 20, t_max = epochs * steps_per_epoch - warmup;
  const double lr = 0.1, momentum = 0.9, weight_decay = 5e-4, smoothing = 0.1, start_factor = 0.1, eta_min = 1e-4;

  torch::manual_seed(2024);
  kiln::test::Mlp net(64, hidden, 10);
  net->to(torch::kDouble);
  json weights;
  for (const auto& p : net->named_parameters()) weights[p.key()] = to_json(p.value());
  const json run = {{"seed", 0},
                    {"samples", samples},
                    {"hidden", hidden},
                    {"batch_size", batch_size},
                    {"epochs", epochs},
                    {"accumulate", 2},
                    {"lr", lr},
                    {"momentum", momentum},
                    {"weight_decay", weight_decay},
                    {"label_smoothing", smoothing},
                    {"warmup", warmup},
                    {"start_factor", start_factor},
                    {"t_max", t_max},
                    {"eta_min", eta_min},
                    {"weights", weights}};
  const json torch_run = kiln::test::run_reference("torch_digits_run.py", run);

  const auto x = from_json(torch_run.at("x"), torch::kDouble).reshape({samples, 64});
  const auto y = from_json(torch_run.at("y"), torch::kLong);
  kiln::trainer trainer{kiln::backbone<kiln::test::Mlp>{.module = net},
                        kiln::sgd{.lr = lr, .momentum = momentum, .weight_decay = weight_decay},
                        kiln::cross_entropy{.label_smoothing = smoothing},
                        kiln::warmup<kiln::cosine_annealing>{
                            .length = warmup,
                            .start_factor = start_factor,
                            .then = {.t_max = t_max, .eta_min = eta_min, .interval = kiln::interval::step}},
                        kiln::accumulate<2>{}};
  const auto history = trainer.fit(kiln::data::tensor_batches{x, y, {.batch_size = batch_size}}, {.epochs = epochs});

  std::string table = "epoch   kiln train/loss        PyTorch loss           difference\n";
  double worst_loss = 0;
  for (std::size_t e = 0; e < history.size(); ++e) {
    const double ours = history[e].at("train/loss"), theirs = torch_run.at("epoch_losses")[e].get<double>();
    worst_loss = std::max(worst_loss, std::abs(ours - theirs));
    char line[128];
    std::snprintf(line, sizeof line, "%5zu   %.15f    %.15f    %.2e\n", e + 1, ours, theirs, ours - theirs);
    table += line;
  }
  double worst_weight = 0;
  for (const auto& p : net->named_parameters()) {
    const auto theirs = from_json(torch_run.at("weights").at(p.key()), torch::kDouble).reshape(p.value().sizes());
    worst_weight = std::max(worst_weight, (p.value() - theirs).abs().max().item<double>());
  }
  std::printf(
      "\nDigits run, kiln beside PyTorch (%lld epochs, %lld optimizer steps, float64):\n%s"
      "max |weight difference| after the run: %.3g; max |loss difference|: %.3g\n",
      static_cast<long long>(epochs), static_cast<long long>(trainer.state().step), table.c_str(), worst_weight,
      worst_loss);
  CHECK(trainer.state().step == epochs * steps_per_epoch);
  CHECK(trainer.scheduler().advances() == epochs * steps_per_epoch);
  CHECK(worst_weight <= 1e-5);
  CHECK(worst_loss <= 1e-9);
  CHECK(history.back().at("train/loss") < 0.5 * history.front().at("train/loss"));  // it learned
}
