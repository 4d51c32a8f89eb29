// kiln/metrics/metrics.hpp: the metric list, its checks, and metrics in a pipeline.
#include "../support.hpp"

#include <tuple>

namespace {
using kiln::average;
using kiln::test::Mlp;

// Every metric kiln offers, for the checks that apply to all of them.
using every_metric = std::tuple<
    kiln::accuracy, kiln::top_k_accuracy<2>, kiln::confusion_matrix, kiln::precision<average::macro>,
    kiln::recall<average::weighted>, kiln::f1<average::micro>, kiln::fbeta<average::macro>, kiln::auroc<average::macro>,
    kiln::auroc<average::micro>, kiln::average_precision<average::weighted>, kiln::mean_absolute_error,
    kiln::mean_squared_error, kiln::root_mean_squared_error, kiln::r2_score, kiln::mean_reciprocal_rank, kiln::ndcg<3>,
    kiln::mean_average_precision<3>>;

template <class M>
void update_on_meta(const torch::Tensor& output, const torch::Tensor& target) {
  CAPTURE(M::name);
  M metric{};
  metric.reset(torch::kMeta);
  CHECK_NOTHROW(metric.update(output, target));
  CHECK_NOTHROW(metric.update(output, target));
}
}  // namespace

static_assert([]<class... Ms>(std::tuple<Ms...>*) { return (kiln::Metric<Ms> && ...); }(static_cast<every_metric*>(nullptr)));
static_assert(kiln::ScalarMetric<kiln::f1<average::macro>>);
static_assert(kiln::Metric<kiln::confusion_matrix> && !kiln::ScalarMetric<kiln::confusion_matrix>);
static_assert(!kiln::detail::names_are_unique<kiln::f1<average::macro>, kiln::accuracy, kiln::f1<average::macro>>());
static_assert(kiln::detail::names_are_unique<kiln::f1<average::macro>, kiln::f1<average::micro>, kiln::fbeta<average::macro>>());
static_assert(kiln::metrics<kiln::ndcg<10>, kiln::accuracy>::has("ndcg@10"));
static_assert(!kiln::metrics<kiln::ndcg<10>, kiln::accuracy>::has("ndcg"));

// The meta device holds shapes and no values: reading a value there (.item(), .cpu(), nonzero,
// bincount, anything whose result's shape depends on the data) throws. So a metric whose
// update() runs there cannot synchronise with the device it runs on.
TEST_CASE("update() never reads a value back: every metric updates on the meta device") {
  const auto meta = torch::TensorOptions(torch::kMeta);
  const auto scores = torch::empty({16, 5}, meta), classes = torch::empty({16}, meta.dtype(torch::kLong));
  update_on_meta<kiln::accuracy>(scores, classes);
  update_on_meta<kiln::accuracy>(torch::empty({16}, meta), torch::empty({16}, meta));  // one logit, float targets
  update_on_meta<kiln::top_k_accuracy<2>>(scores, classes);
  update_on_meta<kiln::confusion_matrix>(scores, classes);
  update_on_meta<kiln::precision<average::macro>>(scores, classes);
  update_on_meta<kiln::recall<average::weighted>>(scores, classes);
  update_on_meta<kiln::f1<average::binary>>(torch::empty({16, 1}, meta), torch::empty({16}, meta));
  update_on_meta<kiln::fbeta<average::micro>>(scores, classes);
  update_on_meta<kiln::auroc<average::binary>>(torch::empty({16}, meta), classes);
  update_on_meta<kiln::auroc<average::weighted>>(scores, classes);
  update_on_meta<kiln::average_precision<average::macro>>(scores, classes);
  const auto values = torch::empty({16}, meta), table = torch::empty({16, 3}, meta);
  update_on_meta<kiln::mean_absolute_error>(values, values);
  update_on_meta<kiln::mean_squared_error>(table, table);
  update_on_meta<kiln::root_mean_squared_error>(values, values);
  update_on_meta<kiln::r2_score>(table, table);
  update_on_meta<kiln::mean_reciprocal_rank>(table, table);
  update_on_meta<kiln::ndcg<2>>(table, table);
  update_on_meta<kiln::mean_average_precision<2>>(table, table);
}

TEST_CASE("metrics with runtime options are listed by value; the list deduces its types") {
  kiln::metrics list{kiln::accuracy{}, kiln::fbeta<average::macro>{.beta = 2}};
  static_assert(std::is_same_v<decltype(list), kiln::metrics<kiln::accuracy, kiln::fbeta<average::macro>>>);
  CHECK(std::get<1>(list.items).beta == 2.0);
}

TEST_CASE("metrics chosen in the pipeline reach the validation results and the callback context") {
  struct capture {
    kiln::metric_values* seen;
    void on_validation_end(kiln::context& ctx) { *seen = ctx.metrics; }
  };
  auto data = kiln::test::make_toy(120, 5);
  kiln::data::tensor_batches train{data.x, data.y, {.batch_size = 16}};
  kiln::data::tensor_batches val{data.x, data.y, {.batch_size = 32}};
  kiln::metric_values seen;
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<Mlp>{}, kiln::sgd{.lr = 0.1},
                  kiln::metrics{kiln::accuracy{}, kiln::f1<average::macro>{}, kiln::auroc<average::macro>{},
                                kiln::top_k_accuracy<2>{}, kiln::confusion_matrix{}},
                  kiln::callbacks{capture{&seen}}};
  const auto history = t.fit(train, val, {.epochs = 2});
  for (const auto* name : {"val/accuracy", "val/f1_macro", "val/auroc_ovr_macro", "val/top2_accuracy", "val/confusion_matrix[2,1]"}) {
    CAPTURE(name);
    CHECK(history.back().contains(name));
    CHECK(seen.at(name) == history.back().at(name));
  }

  // The same numbers from the outputs, in one batch.
  const auto logits = t.predict(val);
  auto direct = [&](auto metric) {
    metric.reset(torch::kCPU);
    metric.update(logits, data.y);
    return metric.compute();
  };
  CHECK(seen.at("val/accuracy") == doctest::Approx(direct(kiln::accuracy{})).epsilon(1e-12));
  CHECK(seen.at("val/f1_macro") == doctest::Approx(direct(kiln::f1<average::macro>{})).epsilon(1e-12));
  CHECK(seen.at("val/auroc_ovr_macro") == doctest::Approx(direct(kiln::auroc<average::macro>{})).epsilon(1e-12));
  CHECK(seen.at("val/confusion_matrix[2,1]") == direct(kiln::confusion_matrix{})[2][1].item<double>());
}

TEST_CASE("a binary classifier with one logit, float targets and bce_with_logits reports binary metrics") {
  struct one_logitImpl : torch::nn::Module {
    one_logitImpl() { fc = register_module("fc", torch::nn::Linear(8, 1)); }
    torch::Tensor forward(const torch::Tensor& x) { return fc->forward(x).squeeze(1); }
    torch::nn::Linear fc{nullptr};
  };
  TORCH_MODULE(one_logit);
  auto data = kiln::test::make_toy(96, 9);
  const auto y = data.y.eq(0).to(torch::kFloat);
  torch::manual_seed(0);
  kiln::trainer t{kiln::backbone<one_logit>{}, kiln::bce_with_logits{}, kiln::adam{.lr = 0.05},
                  kiln::metrics<kiln::accuracy, kiln::f1<average::binary>, kiln::auroc<average::binary>,
                                kiln::average_precision<average::binary>>{}};
  kiln::data::tensor_batches batches{data.x, y, {.batch_size = 16}};
  const auto history = t.fit(batches, batches, {.epochs = 5});
  CHECK(history.back().at("val/auroc") > 0.9);
  CHECK(history.back().at("val/accuracy") > 0.8);
  CHECK(history.back().contains("val/f1"));
  CHECK(history.back().contains("val/average_precision"));
}
