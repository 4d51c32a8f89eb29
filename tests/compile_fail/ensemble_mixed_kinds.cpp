// Misuse: an ensemble of a classifier and a regressor, whose outputs mean different things.
// Expected: "kiln::ensemble::predict: the members' outputs are of different kinds"
#include "common.hpp"

#include <kiln/ensemble/ensemble.hpp>

#include <tuple>

void compile_fail_case() {
  kiln::trainer classifier{kiln::backbone<cf::Tiny>{}, kiln::cross_entropy{}};
#ifndef KILN_CF_FIXED
  kiln::trainer regressor{kiln::backbone<cf::Tiny>{}, kiln::mse{}};
#else
  kiln::trainer regressor{kiln::backbone<cf::Tiny>{}, kiln::softmax_focal_loss{}};
#endif
  auto data = cf::batches();
  (void)kiln::ensemble::predict(kiln::ensemble::soft_vote{}, std::tie(classifier, regressor), data);
}
