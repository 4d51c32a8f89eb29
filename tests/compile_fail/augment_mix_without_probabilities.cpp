// Misuse: MixUp in a pipeline whose loss does not read class probabilities.
// Expected: "kiln::augment: kiln::mixup and kiln::cutmix turn the targets into class probabilities"
#include "common.hpp"

void compile_fail_case() {
#ifndef KILN_CF_FIXED
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::augment{kiln::mixup{.classes = 3}}, kiln::softmax_focal_loss{}};
#else
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::augment{kiln::mixup{.classes = 3}}, kiln::cross_entropy{}};
#endif
  auto data = cf::batches();
  t.fit(data);
}
