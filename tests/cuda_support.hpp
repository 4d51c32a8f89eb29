// For the tests that need a CUDA device (each returns early, saying so, where there is none):
// a callback that makes any host-device synchronisation inside training steps an error.
#pragma once

#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <cstdint>

#if __has_include(<cuda_runtime_api.h>) && __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAFunctions.h>
#define KILN_TEST_HAS_SYNC_DEBUG 1
#else
#define KILN_TEST_HAS_SYNC_DEBUG 0
#endif

namespace kiln::test {

inline void sync_debug_error(bool on) {
#if KILN_TEST_HAS_SYNC_DEBUG
  c10::cuda::warning_state().set_sync_debug_mode(on ? c10::cuda::SyncDebugMode::L_ERROR
                                                    : c10::cuda::SyncDebugMode::L_DISABLED);
#else
  (void)on;
#endif
}

/// Whether LibTorch's sync debug mode, set from here, makes a synchronising call throw (the
/// positive control of forbid_sync).
inline bool sync_debug_works() {
  if (!torch::cuda::is_available()) return false;
  const auto t = torch::ones({1}, torch::Device(torch::kCUDA, 0));
  sync_debug_error(true);
  bool threw = false;
  try {
    (void)t.item<float>();
  } catch (const std::exception&) {
    threw = true;
  }
  sync_debug_error(false);
  return threw;
}

/// Turns LibTorch's CUDA sync debug mode to "error" from the start of each training batch of
/// epochs >= from_epoch to the end of the epoch's last batch: a step that synchronises with the
/// device (an .item(), a blocking copy) then throws. Each epoch's first batch is left out: there
/// the loss reads the class indices once, on purpose (kiln/loss/loss.hpp), so that an index out
/// of range is a clear error and not a device-side assert. The end of the epoch reads the loss,
/// so the mode is off again after the last batch.
struct forbid_sync {
  std::int64_t from_epoch = 0;
  std::int64_t* batches_checked = nullptr;
  void on_batch_begin(kiln::context& ctx) {
    if (ctx.epoch >= from_epoch && ctx.batch > 0) sync_debug_error(true);
  }
  void on_batch_end(kiln::context& ctx) {
    if (ctx.epoch >= from_epoch && ctx.batch > 0 && batches_checked != nullptr) ++*batches_checked;
    if (ctx.batch + 1 == ctx.batches_per_epoch) sync_debug_error(false);
  }
  void on_fit_end(kiln::context&) { sync_debug_error(false); }
};

/// Turns the sync debug mode off when the scope ends, also when a fit under forbid_sync throws
/// (its on_fit_end does not run then), so that the next test does not inherit it.
struct sync_debug_off_at_exit {
  sync_debug_off_at_exit() = default;
  sync_debug_off_at_exit(const sync_debug_off_at_exit&) = delete;
  sync_debug_off_at_exit& operator=(const sync_debug_off_at_exit&) = delete;
  ~sync_debug_off_at_exit() { sync_debug_error(false); }
};

}  // namespace kiln::test
