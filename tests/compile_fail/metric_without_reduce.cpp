// Misuse: a metric of one's own, without reduce(), in a data-parallel pipeline: each process
// would report its own share's value.
// Expected: "kiln::metrics<Ms...>: in a data-parallel fit each process validates a share of the data"
#include "common.hpp"

#include <kiln/distributed/data_parallel.hpp>

#include <cstdint>
#include <string_view>

struct samples_seen {
  static constexpr std::string_view name = "samples";
  void reset(const torch::Device&) { n = 0; }
  void update(const torch::Tensor& output, const torch::Tensor&) { n += output.size(0); }
  [[nodiscard]] double compute() const { return static_cast<double>(n); }
#ifdef KILN_CF_FIXED
  void reduce(kiln::processes& group) { n = group.sum(n); }
#endif
  std::int64_t n = 0;
};

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::metrics<samples_seen>{}, kiln::data_parallel<kiln::gloo>{}};
  auto data = cf::batches();
  t.fit(data, data);
}
