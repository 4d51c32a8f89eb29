// kiln/metrics/metrics.hpp — the metrics a pipeline computes on validation data.
//
// A metric keeps its state on the device (sums and counts), is updated once per batch without
// synchronising, and is read once, at the end of the epoch. It is written as:
//
//   struct my_metric {
//     static constexpr std::string_view name = "my_metric";  // reported as "val/my_metric"
//     void reset(const torch::Device&);                          // before each pass
//     void update(const torch::Tensor& output, const torch::Tensor& target);
//     double compute() const;                                    // after the pass
//   };
//
//   kiln::metrics<kiln::accuracy>{}
#pragma once

#include <kiln/core/metric_values.hpp>
#include <kiln/core/role.hpp>

#include <torch/types.h>

#include <concepts>
#include <string>
#include <string_view>
#include <tuple>

namespace kiln {

template <class M>
concept Metric = requires(M& m, const M& cm, const torch::Device& device, const torch::Tensor& t) {
  { M::name } -> std::convertible_to<std::string_view>;
  m.reset(device);
  m.update(t, t);
  { cm.compute() } -> std::convertible_to<double>;
};

namespace detail {
template <class M>
constexpr bool is_a_metric() {
  static_assert(Metric<M>,
                "kiln::metrics<Ms...>: a type is not a kiln::Metric (it is named in the "
                "'with M = ...' note below); a metric needs `static constexpr std::string_view "
                "name`, `void reset(const torch::Device&)`, `void update(const torch::Tensor& "
                "output, const torch::Tensor& target)` and `double compute() const`.");
  return true;  // the assertion above is the one error shown
}
}  // namespace detail

/// The validation metrics of a pipeline.
template <class... Ms>
struct metrics {
  static_assert((detail::is_a_metric<Ms>() && ...));
  using kiln_role = role::metrics;

  std::tuple<Ms...> items{};

  void reset(const torch::Device& device) {
    std::apply([&](auto&... m) { (m.reset(device), ...); }, items);
  }
  void update(const torch::Tensor& output, const torch::Tensor& target) {
    std::apply([&](auto&... m) { (m.update(output, target), ...); }, items);
  }
  /// Writes "<prefix><name>" for each metric.
  void compute(std::string_view prefix, metric_values& out) const {
    std::apply(
        [&](const auto&... m) {
          (out.set(std::string{prefix} + std::string{std::remove_cvref_t<decltype(m)>::name},
                   m.compute()),
           ...);
        },
        items);
  }
  /// True when this pipeline reports a metric called `name` (without prefix).
  static constexpr bool has(std::string_view name) { return ((Ms::name == name) || ...); }
};

}  // namespace kiln
