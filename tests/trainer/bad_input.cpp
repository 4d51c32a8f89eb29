// A pipeline fed data that does not fit it stops with a message that says which part did not
// fit and how, not with LibTorch's bare one.
#include "../support.hpp"

#include <string>

using kiln::test::contains;
using kiln::test::message_of;
using kiln::test::Mlp;

namespace {
// A CNN for 1×28×28 images: conv 3×3 (no padding), then a linear layer sized for 26×26 maps.
struct DigitNetImpl : torch::nn::Module {
  DigitNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 2, 3)));
    out = register_module("out", torch::nn::Linear(2 * 26 * 26, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) { return out->forward(torch::relu(conv->forward(x)).flatten(1)); }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(DigitNet);

kiln::data::tensor_batches batches_of(const torch::Tensor& x, const torch::Tensor& y) {
  return kiln::data::tensor_batches{x, y, {.batch_size = 16}};
}
}  // namespace

TEST_CASE("labels beyond the head's outputs: 10 logits, labels of 12 classes") {
  auto x = torch::randn({48, 8});
  auto y = torch::arange(48, torch::kLong).remainder(12);  // classes 0..11
  kiln::trainer ce{kiln::backbone<Mlp>{Mlp(8, 16, 10)}};
  CHECK(contains(message_of([&] { ce.fit(batches_of(x, y)); }),
                 "kiln::cross_entropy: a target is 10 but the output [16, 10] float32 has 10 classes; class indices "
                 "must be in [0, 9] (or ignore_index = -100). Does the head have as many outputs as the data has "
                 "classes?"));
  kiln::trainer focal{kiln::backbone<Mlp>{Mlp(8, 16, 10)}, kiln::softmax_focal_loss{}};
  CHECK(contains(message_of([&] { focal.fit(batches_of(x, y)); }),
                 "kiln::softmax_focal_loss: a target is 10 but the output [16, 10] float32 has 10 classes"));

  // The values are read on the first batch only (one synchronisation per epoch); on the CPU a
  // bad label in a later batch is still LibTorch's error behind the loss's name and the shapes.
  auto late = torch::arange(48, torch::kLong).remainder(10);
  late[40] = 11;
  kiln::trainer later{kiln::backbone<Mlp>{Mlp(8, 16, 10)}};
  CHECK(contains(message_of([&] { later.fit(batches_of(x, late)); }),
                 "kiln::cross_entropy: output [16, 10] float32 and target [16] int64: Target 11 is out of bounds."));

  // Validation data is checked the same way.
  kiln::trainer validated{kiln::backbone<Mlp>{Mlp(8, 16, 10)}};
  CHECK(contains(message_of([&] { validated.fit(batches_of(x, late.remainder(10)), batches_of(x, y)); }),
                 "kiln::cross_entropy: a target is 10 but the output [16, 10] float32 has 10 classes"));
}

TEST_CASE("images of the wrong size name the batch and the input's shape") {
  kiln::trainer t{kiln::backbone<DigitNet>{}};
  auto right = torch::rand({32, 1, 28, 28});
  auto wrong = torch::rand({32, 1, 32, 32});
  auto y = torch::zeros({32}, torch::kLong);
  CHECK(message_of([&] { t.fit(batches_of(right, y)); }) == "no error");
  CHECK(contains(message_of([&] { t.fit(batches_of(wrong, y)); }),
                 "kiln::trainer: the model failed on batch 0, input [16, 1, 32, 32] float32: mat1 and mat2 shapes "
                 "cannot be multiplied (16x1800 and 1352x10) (does the data have the shape and dtype the backbone "
                 "expects?)"));
  CHECK(contains(message_of([&] {
                   (void)t.predict(std::vector<torch::Tensor>{right.narrow(0, 0, 4), wrong});
                 }),
                 "kiln::trainer: the model failed on batch 1, input [32, 1, 32, 32] float32"));
  // Wrong dtype: bytes straight from an IDX file, not yet scaled to float.
  auto bytes = torch::zeros({32, 1, 28, 28}, torch::kUInt8);
  CHECK(contains(message_of([&] { t.fit(batches_of(bytes, y)); }),
                 "kiln::trainer: the model failed on batch 0, input [16, 1, 28, 28] uint8: "));
}

TEST_CASE("a head that does not fit the backbone's output says so") {
  kiln::trainer t{kiln::backbone<Mlp>{Mlp(8, 16, 3)}, kiln::head{torch::nn::Linear(4, 5)}};
  auto x = torch::randn({32, 8});
  auto y = torch::zeros({32}, torch::kLong);
  CHECK(contains(message_of([&] { t.fit(batches_of(x, y)); }),
                 "kiln::head: the backbone's output [16, 3] float32 does not fit the head: mat1 and mat2 shapes cannot "
                 "be multiplied (16x3 and 4x5) (make the head's input size match the backbone's output)"));
}

TEST_CASE("targets of the wrong shape or dtype for the loss name the loss and both tensors") {
  auto x = torch::randn({32, 8});
  kiln::trainer regression{kiln::backbone<Mlp>{Mlp(8, 16, 1)}, kiln::mse{}};
  CHECK(contains(message_of([&] { regression.fit(batches_of(x, torch::randn({32}))); }),
                 "kiln::mse: output [16, 1] float32 and target [16] float32: the target must have the output's shape "
                 "[16, 1]"));
  CHECK(contains(
      message_of([&] {
        regression.fit(batches_of(x, torch::randn({32, 1}, torch::kDouble)));
      }),
      "kiln::mse: output [16, 1] float32 and target [16, 1] float64: the target must have the output's dtype"));
  kiln::trainer classifier{kiln::backbone<Mlp>{}};
  CHECK(
      contains(message_of([&] { classifier.fit(batches_of(x, torch::zeros({32}, torch::kInt))); }),
               "kiln::cross_entropy: output [16, 3] float32 and target [16] int32: class-index targets must be int64"));
}

TEST_CASE("LibTorch's error in a user's loss comes back with the shapes the loss was given") {
  auto mismatched = [](const torch::Tensor& out, const torch::Tensor& y) { return (out - y).pow(2).mean(); };
  kiln::trainer t{kiln::backbone<Mlp>{Mlp(8, 16, 3)}, kiln::loss{mismatched}};
  CHECK(contains(message_of([&] {
                   t.fit(batches_of(torch::randn({32, 8}), torch::randn({32, 4})));
                 }),
                 "kiln::trainer: the loss failed on output [16, 3] float32 and target [16, 4] float32: The size of "
                 "tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1"));
}
