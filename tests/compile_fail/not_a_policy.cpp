// Misuse: a type that names no role, passed to kiln::trainer as if it were a policy.
// Expected: "kiln: a type in this pipeline plays no role"
#include "common.hpp"

struct not_a_policy {
  double momentum = 0.9;
};

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{.lr = 0.1}, not_a_policy{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{.lr = 0.1}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
