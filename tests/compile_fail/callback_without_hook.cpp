// Misuse: a type inside kiln::callbacks{...} that has no hook at all (here, a misspelt one).
// Expected: "kiln::callbacks: a type inside kiln::callbacks{...} has no hook"
#include "common.hpp"

struct log_epochs {
  int epochs = 0;
#ifndef KILN_CF_FIXED
  void on_epoch_finished(kiln::context&) { ++epochs; }
#else
  void on_epoch_end(kiln::context&) { ++epochs; }
#endif
};

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::callbacks{log_epochs{}}};
  auto data = cf::batches();
  t.fit(data);
}
