// The program both consumer projects build: kiln seen from outside, through its public include
// (plus <torch/torch.h> for torch::nn::Linear, which kiln.hpp does not pull in). Trains a tiny
// linear classifier on random data for one epoch; exits 0 only when the history holds one epoch
// with a finite "train/loss".
#include <kiln/kiln.hpp>
#include <torch/torch.h>

// The find_package consumer links kiln::compiled, which must reach this file as
// KILN_SEPARATE_COMPILATION (kiln's functions then come from its library, or the link fails).
#if defined(KILN_CONSUMER_LINKS_COMPILED) && !defined(KILN_SEPARATE_COMPILATION)
#error "kiln::compiled did not pass KILN_SEPARATE_COMPILATION on to the program that links it"
#endif

#include <cmath>
#include <cstdio>
#include <exception>

int main() try {
  torch::manual_seed(0);
  const auto inputs = torch::randn({64, 4});
  const auto targets = torch::randint(0, 3, {64}, torch::TensorOptions().dtype(torch::kLong));
  kiln::data::tensor_batches batches{inputs, targets, {.batch_size = 16, .shuffle = true, .seed = 1}};

  kiln::trainer trainer{kiln::backbone<torch::nn::Linear>{.module = torch::nn::Linear(4, 3)},
                        kiln::sgd{.lr = 0.1}};
  const kiln::history history = trainer.fit(batches, {.epochs = 1});

  if (history.size() != 1) {
    std::fprintf(stderr, "kiln consumer: expected 1 epoch of history, got %zu\n", history.size());
    return 1;
  }
  const double* loss = history.front().find("train/loss");
  if (loss == nullptr || !std::isfinite(*loss)) {
    std::fprintf(stderr, "kiln consumer: no finite train/loss in the history\n");
    return 1;
  }
  std::printf("kiln %d.%d.%d consumer: 1 epoch, train/loss %.4f\n", kiln::version_major,
              kiln::version_minor, kiln::version_patch, *loss);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kiln consumer: %s\n", e.what());
  return 1;
}
