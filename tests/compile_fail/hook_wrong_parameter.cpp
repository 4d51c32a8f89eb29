// Misuse: a callback hook with the wrong parameter type.
// Expected: "kiln::callbacks: a callback declares 'on_epoch_end' but kiln cannot call it as a hook"
#include "common.hpp"

struct count_epochs {
  int epochs = 0;
#ifndef KILN_CF_FIXED
  void on_epoch_end(int) { ++epochs; }
#else
  void on_epoch_end(kiln::context&) { ++epochs; }
#endif
};

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::callbacks{count_epochs{}}};
  auto data = cf::batches();
  t.fit(data);
}
