// Positive control: a valid pipeline using every role, built by the same mechanism as the
// compile-fail cases. Its test expects the build to succeed, so the harness cannot pass merely
// because every build fails.
#include "common.hpp"

#include <cstdint>
#include <string_view>

namespace {

struct samples_seen {
  static constexpr std::string_view name = "samples";
  void reset(const torch::Device&) { n = 0; }
  void update(const torch::Tensor& output, const torch::Tensor&) { n += output.size(0); }
  [[nodiscard]] double compute() const { return static_cast<double>(n); }
  std::int64_t n = 0;
};

struct every_hook {
  int calls = 0;
  void on_fit_begin(kiln::context&) { ++calls; }
  void on_epoch_begin(kiln::context&) { ++calls; }
  void on_batch_begin(kiln::context&) { ++calls; }
  void on_before_optimizer_step(kiln::context&) { ++calls; }
  void on_batch_end(kiln::context&) { ++calls; }
  void on_validation_end(kiln::context&) { ++calls; }
  void on_epoch_end(kiln::context&) { ++calls; }
  void on_fit_end(kiln::context&) { ++calls; }
};

}  // namespace

void compile_fail_case() {
  kiln::trainer t{kiln::backbone<cf::Tiny>{.lr_ratio = 0.1},
                  kiln::freeze<1>{},
                  kiln::head{torch::nn::Linear(3, 3)},
                  kiln::loss{[](const torch::Tensor& out, const torch::Tensor& y) {
                    return torch::cross_entropy_loss(out, y);
                  }},
                  kiln::sgd{.lr = 0.1, .momentum = 0.9},
                  kiln::step_lr{.step_size = 1, .gamma = 0.5},
                  kiln::accumulate<2>{},
                  kiln::metrics<kiln::accuracy, samples_seen>{},
                  kiln::callbacks{every_hook{}}};
  auto data = cf::batches();
  t.fit(data, data, {.epochs = 2});
  t.validate(data);
  t.predict(data);
}
