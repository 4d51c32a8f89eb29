// Misuse: test-time augmentation of dense outputs with a variant that has no inverse.
// Expected: "kiln::dense_tta: every variant needs an inverse"
#include "common.hpp"

#include <vector>

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}};
  std::vector<torch::Tensor> images{torch::rand({2, 3, 8, 8})};
#ifndef KILN_CF_FIXED
  (void)t.predict(images, kiln::dense_tta<kiln::mean_logits, kiln::hflip, kiln::center_crop>{});
#else
  (void)t.predict(images, kiln::dense_tta<kiln::mean_logits, kiln::hflip, kiln::rot90<2>>{});
#endif
}
