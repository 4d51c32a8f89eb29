// kiln/metrics/metrics.hpp — the metrics a pipeline computes on validation data, and every
// metric kiln offers (included at the end of this header).
//
// A metric keeps its state on the device (sums, counts, or the batches' scores), is updated
// once per batch without synchronising, and is read once, at the end of the pass. It is
// written as:
//
//   struct my_metric {
//     static constexpr std::string_view name = "my_metric";  // reported as "val/my_metric"
//     void reset(const torch::Device&);                          // before each pass
//     void update(const torch::Tensor& output, const torch::Tensor& target);
//     double compute() const;                                    // after the pass
//   };
//
// In a data-parallel fit (kiln/distributed/data_parallel.hpp) a metric also needs
// `void reduce(kiln::processes&)`, which makes its state that of every process's share of the
// validation data (kiln/core/processes.hpp); every metric below has it.
//
// compute() may instead return a torch::Tensor, a table of values (kiln::confusion_matrix):
// each element is reported under the name followed by its index, "val/confusion_matrix[3,5]".
// An optional `void validate() const` checks a metric's runtime options when the list is built.
//
//   kiln::metrics<kiln::accuracy, kiln::f1<kiln::average::macro>>{}
//   kiln::metrics{kiln::accuracy{}, kiln::fbeta<kiln::average::macro>{.beta = 2}}
//
// The metric families, one header each:
//   kiln/metrics/accuracy.hpp        accuracy, top_k_accuracy<K>
//   kiln/metrics/classification.hpp  confusion_matrix, precision<A>, recall<A>, f1<A>, fbeta<A>
//   kiln/metrics/auroc.hpp           auroc<A>, average_precision<A>
//   kiln/metrics/regression.hpp      mean_absolute_error, mean_squared_error,
//                                    root_mean_squared_error, r2_score
//   kiln/metrics/ranking.hpp         mean_reciprocal_rank, ndcg<K>, mean_average_precision<K>
#pragma once

#include <kiln/core/metric_values.hpp>
#include <kiln/core/processes.hpp>
#include <kiln/core/role.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace kiln {

template <class M>
concept Metric = requires(M& m, const M& cm, const torch::Device& device, const torch::Tensor& t) {
  { M::name } -> std::convertible_to<std::string_view>;
  m.reset(device);
  m.update(t, t);
  requires std::convertible_to<decltype(cm.compute()), double> ||
               std::same_as<std::remove_cvref_t<decltype(cm.compute())>, torch::Tensor>;
};

/// A metric whose compute() returns one number.
template <class M>
concept ScalarMetric = Metric<M> && std::convertible_to<decltype(std::declval<const M&>().compute()), double>;

namespace detail {
template <class M>
constexpr bool is_a_metric() {
  static_assert(Metric<M>,
                "kiln::metrics<Ms...>: a type is not a kiln::Metric (it is named in the "
                "'with M = ...' note below); a metric needs `static constexpr std::string_view "
                "name`, `void reset(const torch::Device&)`, `void update(const torch::Tensor& "
                "output, const torch::Tensor& target)` and `double compute() const` (or "
                "`torch::Tensor compute() const` for a table of values).");
  return true;  // the assertion above is the one error shown
}

template <class M>
constexpr bool combines_across_processes() {
  static_assert(requires(M& m, processes& group) { m.reduce(group); },
                "kiln::metrics<Ms...>: in a data-parallel fit each process validates a share of the data, "
                "and a metric (named in the 'with M = ...' note below) has no `void reduce(kiln::processes&)` "
                "to combine the shares' states; write one (kiln/core/processes.hpp says how), or leave the "
                "metric out of the distributed pipeline.");
  return true;  // the assertion above is the one error shown
}

template <class... Ms>
constexpr bool names_are_unique() {
  if constexpr ((Metric<Ms> && ...)) {  // otherwise is_a_metric has said what is wrong
    constexpr std::string_view names[] = {std::string_view{Ms::name}..., ""};
    for (std::size_t i = 0; i < sizeof...(Ms); ++i) {
      for (std::size_t j = i + 1; j < sizeof...(Ms); ++j) {
        if (names[i] == names[j]) return false;
      }
    }
  }
  return true;
}

/// Reports a table of values element by element: "<name>[i,j]".
KILN_DECL void report_table(const std::string& name, const torch::Tensor& table, metric_values& out);

template <class M>
void report(const M& metric, std::string_view prefix, metric_values& out) {
  std::string name = std::string{prefix} + std::string{M::name};
  if constexpr (ScalarMetric<M>) {
    out.set(name, metric.compute());
  } else {
    report_table(name, metric.compute(), out);
  }
}
}  // namespace detail

/// The validation metrics of a pipeline. Each metric's name must be unique in the list: it is
/// the key its value is reported under.
///
///   kiln::metrics<kiln::accuracy, kiln::auroc<kiln::average::macro>>{}
///   kiln::metrics{kiln::f1<kiln::average::binary>{.zero_division = 1}}   // runtime options
template <class... Ms>
struct metrics {
  static_assert((detail::is_a_metric<Ms>() && ...));
  static_assert(detail::names_are_unique<Ms...>(),
                "kiln::metrics<Ms...>: two metrics in the list have the same name, so one value "
                "would hide the other; keep one of them (kiln::fbeta's name does not carry its "
                "beta: a list holds one fbeta per average).");
  using kiln_role = role::metrics;

  std::tuple<Ms...> items{};

  metrics() = default;
  /// Metrics with runtime options; each one's options are checked here.
  explicit metrics(Ms... ms)
    requires(sizeof...(Ms) > 0)
      : items(std::move(ms)...) {
    std::apply([](const auto&... m) { (validate(m), ...); }, items);
  }

  void reset(const torch::Device& device) {
    std::apply([&](auto&... m) { (m.reset(device), ...); }, items);
  }
  void update(const torch::Tensor& output, const torch::Tensor& target) {
    std::apply([&](auto&... m) { (m.update(output, target), ...); }, items);
  }
  /// Writes "<prefix><name>" for each metric ("<prefix><name>[i,j]" for each value of a table).
  void compute(std::string_view prefix, metric_values& out) const {
    std::apply([&](const auto&... m) { (detail::report(m, prefix, out), ...); }, items);
  }
  /// Each metric's state becomes that of all the processes' data, in every process (a
  /// data-parallel fit calls it after each validation; kiln/core/processes.hpp).
  void reduce(processes& group) {
    static_assert((detail::combines_across_processes<Ms>() && ...));
    std::apply([&](auto&... m) { (m.reduce(group), ...); }, items);
  }
  /// True when this pipeline reports a single value called `name` (without prefix).
  static constexpr bool has([[maybe_unused]] std::string_view name) {
    return ((ScalarMetric<Ms> && Ms::name == name) || ...);
  }

 private:
  template <class M>
  static void validate(const M& m) {
    if constexpr (requires { m.validate(); }) m.validate();
  }
};

template <class... Ms>
metrics(Ms...) -> metrics<Ms...>;

}  // namespace kiln

// Every metric family, so that kiln::metrics<...> can name any of them.
#include <kiln/detail/linkage.hpp>
#include <kiln/metrics/accuracy.hpp>
#include <kiln/metrics/auroc.hpp>
#include <kiln/metrics/classification.hpp>
#include <kiln/metrics/ranking.hpp>
#include <kiln/metrics/regression.hpp>

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void report_table(const std::string& name, const torch::Tensor& table, metric_values& out) {
  const auto values = table.to(torch::kCPU, torch::kDouble).contiguous();
  const auto flat = values.reshape({-1});
  const auto* data = flat.data_ptr<double>();
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    std::string key = name;
    if (values.dim() > 0) {
      key += '[';
      std::int64_t rest = i, stride = flat.numel();
      for (std::int64_t d = 0; d < values.dim(); ++d) {
        stride /= values.size(d);
        if (d > 0) key += ',';
        key += std::to_string(rest / stride);
        rest %= stride;
      }
      key += ']';
    }
    out.set(key, data[i]);
  }
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
