// Misuse: a callback with on_before_optimizer_step (host code) inside a captured step.
// Expected: "kiln::cuda_graph: a callback has on_before_optimizer_step, which a captured step runs once"
#include <kiln/execution/cuda_graph.hpp>

#include "common.hpp"

struct count_steps {
  int* steps;
  void on_before_optimizer_step(kiln::context&) { ++*steps; }
};

void compile_fail_case() {
  int steps = 0;
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{}, kiln::cuda_graph{}, kiln::callbacks{count_steps{&steps}}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::sgd{}, kiln::callbacks{count_steps{&steps}}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
