// Misuse: freezing a ResNet through a stage it does not have (torchvision's MobileNet names).
// Expected: "kiln::models::freeze_through<M, \"stage\">: M has no stage of that name"
#include "common.hpp"

#include <kiln/models/resnet.hpp>
#include <kiln/models/stages.hpp>

#ifdef KILN_CF_FIXED
using frozen = kiln::models::freeze_through<kiln::models::resnet18, "layer2">;
#else
using frozen = kiln::models::freeze_through<kiln::models::resnet18, "features.6">;
#endif

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<kiln::models::resnet18>{}, frozen{}};
  (void)t;
}
