// Misuse: two optimizer policies in one pipeline.
// Expected: "kiln::trainer: the pipeline names two optimizers"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{.lr = 0.1}, kiln::adamw{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{.lr = 0.1}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
