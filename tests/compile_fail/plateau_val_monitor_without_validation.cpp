// Misuse: a scheduler that monitors a validation metric in a fit without validation data.
// Expected: "which needs validation data"
#include "common.hpp"

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::reduce_on_plateau<"val/loss">{}};
  auto data = cf::batches();
#ifndef KILN_CF_FIXED
  t.fit(data);
#else
  t.fit(data, data);
#endif
}
