// Misuse: kiln::backbone<M> with an M that is not a torch::nn module holder.
// Expected: "kiln::backbone<M>: M must be a torch::nn module holder"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<int>{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
