// Misuse: a pipeline without a backbone.
// Expected: "kiln::trainer: the pipeline has no backbone"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::sgd{.lr = 0.1}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{.lr = 0.1}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
