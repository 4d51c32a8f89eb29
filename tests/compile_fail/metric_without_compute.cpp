// Misuse: a metric inside kiln::metrics<...> that lacks compute().
// Expected: "kiln::metrics<Ms...>: a type is not a kiln::Metric"
#include "common.hpp"

#include <cstdint>
#include <string_view>

struct samples_seen {
  static constexpr std::string_view name = "samples";
  void reset(const torch::Device&) { n = 0; }
  void update(const torch::Tensor& output, const torch::Tensor&) { n += output.size(0); }
#ifdef KILN_CF_FIXED
  [[nodiscard]] double compute() const { return static_cast<double>(n); }
#endif
  std::int64_t n = 0;
};

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::metrics<samples_seen>{}};
  auto data = cf::batches();
  t.fit(data, data);
}
