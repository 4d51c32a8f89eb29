// Misuse: a one_of whose alternatives play different roles (an optimizer and a scheduler).
// Expected: "kiln::one_of: the alternatives play different roles"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::one_of{kiln::sgd{.lr = 0.1}, kiln::step_lr{}}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::one_of{kiln::sgd{.lr = 0.1}, kiln::adamw{}}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
