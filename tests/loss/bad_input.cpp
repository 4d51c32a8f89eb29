// Every built-in loss, given targets of the wrong shape, dtype or range, names itself, both
// tensors and what it needs, instead of LibTorch's bare message (or, for a broadcastable shape,
// no message at all).
#include "../support.hpp"

#include <limits>
#include <string>

using kiln::test::contains;
using kiln::test::message_of;

TEST_CASE("cross_entropy: labels beyond the output's classes are named, with the number of classes") {
  const auto logits = torch::randn({4, 10});
  const kiln::cross_entropy ce;
  const auto labels = torch::tensor({1, 2, 11, 3}, torch::kLong);
  // The value check (one synchronisation) that the trainer runs on the first batch of an epoch.
  CHECK(contains(message_of([&] { ce.check_targets(logits, labels); }),
                 "kiln::cross_entropy: a target is 11 but the output [4, 10] float32 has 10 classes; class indices "
                 "must be in [0, 9] (or ignore_index = -100). Does the head have as many outputs as the data has "
                 "classes?"));
  CHECK(contains(message_of([&] {
                   ce.check_targets(logits, torch::tensor({-1, 0, 0, 0}, torch::kLong));
                 }),
                 "a target is -1"));
  CHECK(message_of([&] { ce.check_targets(logits, torch::tensor({-100, 9, 0, 0}, torch::kLong)); }) == "no error");
  // Called directly, LibTorch's own check is caught and explained.
  CHECK(contains(message_of([&] { (void)ce(logits, labels); }),
                 "kiln::cross_entropy: output [4, 10] float32 and target [4] int64: Target 11 is out of bounds."));
}

TEST_CASE("cross_entropy: targets of the wrong dtype or shape") {
  const auto logits = torch::randn({4, 10});
  const kiln::cross_entropy ce;
  CHECK(contains(message_of([&] { (void)ce(logits, torch::zeros({4}, torch::kInt)); }),
                 "kiln::cross_entropy: output [4, 10] float32 and target [4] int32: class-index targets must be "
                 "int64 (torch::kLong); convert them with target.to(torch::kLong)"));
  CHECK(
      contains(message_of([&] { (void)ce(logits, torch::zeros({5}, torch::kLong)); }),
               "target [5] int64: class-index targets must have the output's shape without its class dimension, [4]"));
  CHECK(contains(message_of([&] {
                   (void)ce(logits, torch::zeros({4, 1}, torch::kLong));
                 }),
                 "without its class dimension, [4]"));
  CHECK(contains(message_of([&] {
                   (void)ce(torch::randn({2, 3, 5}), torch::zeros({2, 3}, torch::kLong));
                 }),
                 "without its class dimension, [2, 5]"));
  CHECK(contains(message_of([&] { (void)ce(logits, torch::rand({4})); }),
                 "target [4] float32: float targets are class probabilities and must have the output's shape [4, 10]; "
                 "class indices must be int64"));
  CHECK(contains(message_of([&] {
                   (void)ce(torch::zeros({4, 10}, torch::kLong), torch::zeros({4}, torch::kLong));
                 }),
                 "the output must be floating-point logits"));
  const kiln::cross_entropy weighted{.weight = torch::ones({3})};
  CHECK(contains(message_of([&] { (void)weighted(logits, torch::zeros({4}, torch::kLong)); }),
                 "weight has 3 entries but the output has 10 classes"));
  // What is right still computes.
  CHECK(message_of([&] { (void)ce(logits, torch::softmax(torch::randn({4, 10}), 1)); }) == "no error");
  CHECK(message_of([&] { (void)ce(torch::randn({10}), torch::tensor(3, torch::kLong)); }) == "no error");
}

TEST_CASE("softmax_focal_loss: labels out of range, wrong shapes, alpha of the wrong size") {
  const auto logits = torch::randn({4, 10});
  const kiln::softmax_focal_loss focal;
  const auto labels = torch::tensor({1, 2, 11, 3}, torch::kLong);
  CHECK(contains(message_of([&] { focal.check_targets(logits, labels); }),
                 "kiln::softmax_focal_loss: a target is 11 but the output [4, 10] float32 has 10 classes"));
  CHECK(contains(message_of([&] { (void)focal(logits, labels); }),
                 "kiln::softmax_focal_loss: output [4, 10] float32 and target [4] int64: index 11 is out of bounds"));
  CHECK(contains(message_of([&] { (void)focal(logits, torch::zeros({4}, torch::kFloat)); }),
                 "class-index targets must be int64"));
  CHECK(contains(message_of([&] {
                   (void)focal(torch::randn({2, 3, 5}), torch::zeros({2, 5}, torch::kLong));
                 }),
                 "kiln::softmax_focal_loss: output [2, 3, 5] float32 and target [2, 5] int64: the output must be "
                 "floating-point logits [N, C]"));
  const kiln::softmax_focal_loss weighted{.alpha = torch::ones({3})};
  CHECK(contains(message_of([&] { (void)weighted(logits, torch::zeros({4}, torch::kLong)); }),
                 "alpha has 3 weights but the output has 10 classes"));
}

TEST_CASE("element-wise losses refuse a target that would broadcast, or of another dtype") {
  const auto output = torch::randn({8, 1});
  auto check_all = [&](const torch::Tensor& target, const std::string& why) {
    CHECK(contains(message_of([&] { (void)kiln::mse{}(output, target); }),
                   "kiln::mse: output [8, 1] float32 and target " + why));
    CHECK(contains(message_of([&] { (void)kiln::l1{}(output, target); }),
                   "kiln::l1: output [8, 1] float32 and target " + why));
    CHECK(contains(message_of([&] { (void)kiln::huber{}(output, target); }),
                   "kiln::huber: output [8, 1] float32 and target " + why));
    CHECK(contains(message_of([&] { (void)kiln::smooth_l1{}(output, target); }),
                   "kiln::smooth_l1: output [8, 1] float32 and target " + why));
    CHECK(contains(message_of([&] { (void)kiln::bce_with_logits{}(output, target); }),
                   "kiln::bce_with_logits: output [8, 1] float32 and target " + why));
    CHECK(contains(message_of([&] { (void)kiln::sigmoid_focal_loss{}(output, target); }),
                   "kiln::sigmoid_focal_loss: output [8, 1] float32 and target " + why));
  };
  // PyTorch would broadcast [8, 1] against [8] into [8, 8] with only a warning.
  check_all(torch::rand({8}),
            "[8] float32: the target must have the output's shape [8, 1] (a model that ends in one "
            "output per sample gives [N, 1]: squeeze(1) it, or unsqueeze(1) the target)");
  // PyTorch would fail in backward() with "Found dtype Double but expected Float".
  check_all(torch::rand({8, 1}, torch::kDouble),
            "[8, 1] float64: the target must have the output's dtype; convert it with target.to(output.dtype())");
  check_all(torch::zeros({8, 1}, torch::kLong), "[8, 1] int64: the target must have the output's dtype");
}

TEST_CASE("a bce_with_logits pos_weight that does not broadcast is LibTorch's message behind the loss's name") {
  const kiln::bce_with_logits bce{.pos_weight = torch::ones({3})};
  const auto message = message_of([&] { (void)bce(torch::randn({4, 2}), torch::rand({4, 2})); });
  CHECK(contains(message, "kiln::bce_with_logits: output [4, 2] float32 and target [4, 2] float32: "));
  CHECK(contains(message, "must match the size of tensor"));
}
