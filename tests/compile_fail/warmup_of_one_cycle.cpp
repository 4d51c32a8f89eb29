// Misuse: a linear warm-up in front of one-cycle, which already warms up.
// Expected: "one_cycle already warms up"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::warmup<kiln::one_cycle>{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::one_cycle{}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
