// Misuse: kiln::nccl with a LibTorch built without NCCL (Debian's, CPU only).
// Expected: "kiln::nccl: this LibTorch was built without NCCL"
#include "common.hpp"

#include <kiln/distributed/data_parallel.hpp>

#ifdef KILN_CF_FIXED
using backend = kiln::gloo;
#else
using backend = kiln::nccl;
#endif

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{}, kiln::data_parallel<backend>{}};
  auto data = cf::batches();
  t.fit(data, data);
}
