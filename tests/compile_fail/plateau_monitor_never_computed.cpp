// Misuse: reduce-on-plateau monitors, by a name in its type, a metric the pipeline never computes.
// Expected: "the pipeline never computes the metric the scheduler monitors"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::reduce_on_plateau<"val/accuracy">{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::reduce_on_plateau<"val/accuracy">{},
                  kiln::metrics<kiln::accuracy>{}};
#endif
  auto data = cf::batches();
  t.fit(data, data);
}
