// Misuse: two loss policies in one pipeline.
// Expected: "kiln::trainer: the pipeline names two losses"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::cross_entropy{}, kiln::mse{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::cross_entropy{}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
