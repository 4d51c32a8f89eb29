// Misuse: gradient accumulation over zero batches.
// Expected: "kiln::accumulate<K>: K is the number of batches per optimizer step and must be at least 1"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::accumulate<0>{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::accumulate<1>{}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
