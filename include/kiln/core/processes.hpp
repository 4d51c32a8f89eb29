// kiln/core/processes.hpp — the processes that train one model together, as the state of a
// metric sees them when it combines what each process measured.
//
// A data-parallel fit (kiln/distributed/data_parallel.hpp) validates each process on its own
// share of the data; at the end of the pass every metric's state becomes that of all the shares,
// so that each process reports the value one process would report on the whole data. A metric
// takes part with one member:
//
//   void reduce(kiln::processes& group);   // this process's state becomes that of all of them
//
// built from all_gather (every process's tensor, in rank order) or the sums below. It is called
// once per validation, in every process, in the same order; it may read values back from the
// device. Every metric kiln offers has it (kiln/metrics/metrics.hpp lists them).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace kiln {

/// The processes that train one model together (kiln::data_parallel's process group).
class processes {
 public:
  virtual ~processes() = default;

  [[nodiscard]] virtual std::int64_t rank() const noexcept = 0;
  [[nodiscard]] virtual std::int64_t world_size() const noexcept = 0;

  /// Every process's `value`, in rank order, this process's own among them. Values may differ in
  /// shape and dtype from process to process, and may be undefined (a process that saw no data);
  /// each comes back with its own shape and dtype, on this process's device for collectives.
  [[nodiscard]] virtual std::vector<torch::Tensor> all_gather(const torch::Tensor& value) = 0;

  /// Σ of `value` over the processes.
  [[nodiscard]] std::int64_t sum(std::int64_t value) {
    std::int64_t total = 0;
    for (const auto& each : all_gather(torch::tensor(value, torch::kLong))) total += each.item<std::int64_t>();
    return total;
  }

  /// `value` becomes its Σ over the processes, in place. Every process holds a tensor of the
  /// same shape; an undefined one (no data seen) takes the sum's shape and dtype.
  void sum_into(torch::Tensor& value) {
    torch::Tensor total;
    for (const auto& each : all_gather(value)) {
      if (!each.defined()) continue;
      total = total.defined() ? total.add_(each.to(total.device())) : each.clone();
    }
    if (!total.defined()) return;
    if (value.defined()) {
      value.copy_(total);
    } else {
      value = total;
    }
  }
};

}  // namespace kiln
