// Misuse: a callback hook that returns a value (as if returning false could stop the fit).
// Expected: "kiln::callbacks: a callback declares 'on_batch_end' but kiln cannot call it as a hook"
#include "common.hpp"

struct stop_after_two {
#ifndef KILN_CF_FIXED
  bool on_batch_end(kiln::context& ctx) { return ctx.step < 2; }
#else
  void on_batch_end(kiln::context& ctx) {
    if (ctx.step >= 2) ctx.request_stop();
  }
#endif
};

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::callbacks{stop_after_two{}}};
  auto data = cf::batches();
  t.fit(data);
}
