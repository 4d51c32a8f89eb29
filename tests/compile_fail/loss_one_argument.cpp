// Misuse: kiln::loss{f} where f takes only the output.
// Expected: "kiln::loss{f}: f must be callable as f(output, target)"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  auto f = [](const torch::Tensor& output) { return output.square().mean(); };
#else
  auto f = [](const torch::Tensor& output, const torch::Tensor&) { return output.square().mean(); };
#endif
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::loss{f}};
  auto data = cf::batches();
  t.fit(data);
}
