// Misuse: freezing more top-level children than the backbone declares (cf::TinyImpl::depth == 2).
// Expected: "kiln::freeze<N>: N is larger than the number of top-level children the backbone declares"
#include "common.hpp"

static_assert(cf::TinyImpl::depth == 2);

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::freeze<3>{}, kiln::head{torch::nn::Linear(3, 3)}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::freeze<2>{}, kiln::head{torch::nn::Linear(3, 3)}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
