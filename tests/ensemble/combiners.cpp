// The ensemble combiners against scikit-learn's VotingClassifier (soft and hard voting, with
// weights and with ties) and against the definitions of the geometric mean and of rank averaging
// in numpy and scipy (tests/reference/sklearn_voting.py), within 1e-12; and the ensembles of
// trainers and of checkpoints built on them.
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/ensemble/ensemble.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

namespace {

using nlohmann::json;

json nested(const torch::Tensor& t) {
  const auto d = t.to(torch::kDouble).contiguous();
  if (d.dim() == 1) return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  json rows = json::array();
  for (std::int64_t i = 0; i < d.size(0); ++i) rows.push_back(nested(d[i]));
  return rows;
}

torch::Tensor from_nested(const json& j, torch::ScalarType type) {
  if (!j.front().is_array()) return torch::tensor(j.get<std::vector<double>>(), torch::kDouble).to(type);
  std::vector<torch::Tensor> rows;
  for (const auto& row : j) rows.push_back(from_nested(row, type));
  return torch::stack(rows);
}

struct combine_case {
  std::string rule;
  kiln::output_kind kind;
  std::vector<torch::Tensor> outputs;
  std::vector<double> weights;

  [[nodiscard]] json to_json() const {
    json out = json::array();
    for (const auto& o : outputs) out.push_back(nested(o));
    return {{"rule", rule},
            {"kind", kind == kiln::output_kind::class_scores ? "class_scores" : "binary_logits"},
            {"outputs", out},
            {"weights", weights.empty() ? json(nullptr) : json(weights)}};
  }

  [[nodiscard]] torch::Tensor combined() const {
    using namespace kiln::ensemble;
    if (rule == "soft") return combine(soft_vote{.weights = weights}, outputs, kind);
    if (rule == "hard") return combine(hard_vote{.weights = weights}, outputs, kind);
    if (rule == "logit_mean") return combine(logit_mean{.weights = weights}, outputs, kind);
    return combine(rank_mean{.weights = weights}, outputs, kind);
  }
};

/// Members' logits, float32 as models give them; with `coarse`, rounded to halves, so that members
/// often agree in their scores and their votes tie.
std::vector<torch::Tensor> members(std::int64_t m, std::vector<std::int64_t> shape, std::uint64_t seed, bool coarse) {
  auto generator = at::detail::createCPUGenerator(seed);
  std::vector<torch::Tensor> out;
  for (std::int64_t i = 0; i < m; ++i) {
    auto logits = torch::randn(shape, generator) * 2;
    out.push_back(coarse ? (logits * 2).round() / 2 : logits);
  }
  return out;
}

}  // namespace

TEST_CASE("the combiners equal scikit-learn's voting rules and the definitions of their means, within 1e-12") {
  std::vector<combine_case> cases;
  const std::vector<std::vector<double>> weightings{{}, {2, 1, 1}, {0.5, 0.25, 0.25}, {1, 1, 2}, {0, 1, 3}};
  std::uint64_t seed = 0;
  for (const auto& weights : weightings) {
    for (const bool coarse : {false, true}) {
      for (const char* rule : {"soft", "hard", "logit_mean"}) {
        cases.push_back({rule, kiln::output_kind::class_scores, members(3, {40, 4}, ++seed, coarse), weights});
        cases.push_back({rule, kiln::output_kind::binary_logits, members(3, {40}, ++seed, coarse), weights});
      }
      cases.push_back({"rank_mean", kiln::output_kind::binary_logits, members(3, {40}, ++seed, coarse), weights});
      cases.push_back({"rank_mean", kiln::output_kind::class_scores, members(3, {40, 2}, ++seed, coarse), weights});
    }
  }
  // Two members of equal weight: every disagreement is a tie, which the lowest class wins.
  cases.push_back({"hard", kiln::output_kind::class_scores, members(2, {60, 5}, ++seed, false), {}});
  cases.push_back({"hard", kiln::output_kind::binary_logits, members(4, {60}, ++seed, false), {}});

  json input = json::array();
  for (const auto& c : cases) input.push_back(c.to_json());
  const json expected = kiln::test::run_reference("sklearn_voting.py", input);
  REQUIRE(expected.size() == cases.size());
  std::int64_t ties = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    CAPTURE(i);
    CAPTURE(c.rule);
    const auto ours = c.combined();
    const auto theirs = from_nested(expected[i]["result"], ours.scalar_type());
    REQUIRE(ours.sizes() == theirs.sizes());
    if (c.rule == "hard") {
      CHECK(torch::equal(ours, theirs));
      if (c.weights.empty() && c.outputs.size() == 2) {
        ties += c.outputs[0].argmax(-1).ne(c.outputs[1].argmax(-1)).sum().item<std::int64_t>();
      }
    } else {
      CHECK((ours - theirs).abs().max().item<double>() < 1e-12);
    }
  }
  CHECK(ties > 10);  // the tie rule was exercised
}

TEST_CASE("the combiners refuse what they cannot combine, naming the problem") {
  using namespace kiln::ensemble;
  const auto three = members(3, {10, 4}, 1, false);
  auto message = [](auto&& f) { return kiln::test::message_of(f); };
  CHECK(kiln::test::contains(message([&] { (void)combine(soft_vote{.weights = {1, 2}}, three, kiln::output_kind::class_scores); }),
                             "kiln::ensemble::soft_vote: 2 weights for 3 members"));
  CHECK(kiln::test::contains(message([&] { (void)combine(hard_vote{.weights = {0, 0, 0}}, three, kiln::output_kind::class_scores); }),
                             "the weights are all 0"));
  CHECK(kiln::test::contains(message([&] { (void)combine(soft_vote{.weights = {1, -1, 1}}, three, kiln::output_kind::class_scores); }),
                             "weights[1] must be"));
  auto mixed = three;
  mixed[2] = torch::zeros({10, 5});
  CHECK(kiln::test::contains(message([&] { (void)combine(soft_vote{}, mixed, kiln::output_kind::class_scores); }),
                             "member 2's output is [10, 5] float32 but member 0's is [10, 4] float32"));
  CHECK(kiln::test::contains(message([&] { (void)combine(rank_mean{}, three, kiln::output_kind::class_scores); }),
                             "ranks need one score per sample"));
  CHECK(kiln::test::contains(message([&] { (void)combine(hard_vote{}, three, kiln::output_kind::values); }),
                             "the members predict values, not classes"));
  CHECK(kiln::test::contains(message([&] { (void)combine(soft_vote{}, std::vector<torch::Tensor>{}, kiln::output_kind::values); }),
                             "the ensemble has no members"));
  // Values are averaged, as VotingRegressor does.
  const std::vector<torch::Tensor> values{torch::tensor({1.0, 2.0}), torch::tensor({3.0, 6.0})};
  CHECK(torch::allclose(combine(soft_vote{.weights = {3, 1}}, values, kiln::output_kind::values),
                        torch::tensor({1.5, 3.0}, torch::kDouble)));
}

TEST_CASE("an ensemble of trainers of different pipeline types, and one of checkpoints, predict as their members") {
  const auto data = kiln::test::make_toy(60, 3);
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  torch::manual_seed(1);
  kiln::trainer mlp{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.1}};
  kiln::trainer bn{kiln::backbone<kiln::test::BnNet>{}, kiln::adam{.lr = 0.01}, kiln::softmax_focal_loss{}};
  mlp.fit(batches, {.epochs = 2});
  bn.fit(batches, {.epochs = 2});
  const std::vector<torch::Tensor> outputs{mlp.predict(batches), bn.predict(batches)};
  const auto voted = kiln::ensemble::predict(kiln::ensemble::hard_vote{.weights = {1, 2}}, std::tie(mlp, bn), batches);
  CHECK(torch::equal(voted, kiln::ensemble::combine(kiln::ensemble::hard_vote{.weights = {1, 2}}, outputs,
                                                    kiln::output_kind::class_scores)));
  static_assert(kiln::ensemble::output_kind_of<decltype(mlp)> == kiln::output_kind::class_scores);

  // Checkpoints of one pipeline: each loaded in turn into one trainer.
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_ensemble_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  torch::manual_seed(2);
  kiln::trainer saving{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.1}};
  std::vector<std::filesystem::path> checkpoints;
  std::vector<torch::Tensor> each;
  for (int round = 0; round < 3; ++round) {
    saving.fit(batches, {.epochs = 1});
    checkpoints.push_back(dir / ("round" + std::to_string(round) + ".pt"));
    saving.save_checkpoint(checkpoints.back());
    each.push_back(saving.predict(batches));
  }
  torch::manual_seed(3);
  kiln::trainer loader{kiln::backbone<kiln::test::Mlp>{}, kiln::sgd{.lr = 0.1}};
  const auto averaged = kiln::ensemble::predict(kiln::ensemble::logit_mean{}, loader, checkpoints, batches);
  CHECK((averaged - kiln::ensemble::combine(kiln::ensemble::logit_mean{}, each, kiln::output_kind::class_scores))
            .abs()
            .max()
            .item<double>() == 0);
}
