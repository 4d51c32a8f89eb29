// Misuse: a captured step with LibTorch's Adam, whose step count lives on the host.
// Expected: "kiln::cuda_graph: LibTorch's Adam, AdamW and Adagrad keep their step count on the host"
#include <kiln/execution/cuda_graph.hpp>

#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::adam{}, kiln::cuda_graph{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{}, kiln::cuda_graph{}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
