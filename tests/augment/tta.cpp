// Test-time augmentation equals the same passes written by hand, for every merge rule with and
// without fastai's beta; dense outputs come back through each variant's inverse chain, checked
// on a non-square image with flips and quarter turns; and it composes with kiln::ensemble.
#include "../support.hpp"

#include <kiln/augment/tta.hpp>
#include <kiln/ensemble/ensemble.hpp>
#include <kiln/kiln.hpp>

#include <cstdint>
#include <tuple>
#include <vector>

namespace {

/// A classifier of 3-channel 6 × 10 images that is not symmetric under flips.
struct SmallCnnImpl : torch::nn::Module {
  torch::nn::Conv2d conv{torch::nn::Conv2dOptions(3, 4, 3).padding(1)};
  torch::nn::Linear fc{4 * 6 * 10, 5};
  SmallCnnImpl() {
    register_module("conv", conv);
    register_module("fc", fc);
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc(torch::relu(conv(x)).flatten(1)); }
};
TORCH_MODULE(SmallCnn);

/// A dense model: 2 classes per pixel, any image size.
struct PixelNetImpl : torch::nn::Module {
  torch::nn::Conv2d conv{torch::nn::Conv2dOptions(3, 2, 3).padding(1)};
  PixelNetImpl() { register_module("conv", conv); }
  torch::Tensor forward(const torch::Tensor& x) { return conv(x); }
};
TORCH_MODULE(PixelNet);

/// Passes the images through: a dense "model" whose outputs are its inputs.
struct SameImpl : torch::nn::Module {
  torch::nn::Linear unused{1, 1};
  SameImpl() { register_module("unused", unused); }
  torch::Tensor forward(const torch::Tensor& x) { return x; }
};
TORCH_MODULE(Same);

}  // namespace

TEST_CASE("kiln::tta equals the plain pass and the variants' passes merged by hand") {
  torch::manual_seed(2);
  kiln::trainer t{kiln::backbone<SmallCnn>{}};
  const auto x = torch::rand({7, 3, 6, 10});
  std::vector<torch::Tensor> batches{x.narrow(0, 0, 4), x.narrow(0, 4, 3)};
  torch::NoGradGuard no_grad;
  t.model()->eval();
  const auto plain = t.model()->forward(x);
  const auto h = t.model()->forward(x.flip({3})), v = t.model()->forward(x.flip({2}));
  const auto hv = t.model()->forward(x.flip({3}).flip({2}));
  auto p = [](const torch::Tensor& o) { return torch::softmax(o, 1); };

  using hv_chain = kiln::chain<kiln::hflip, kiln::vflip>;
  const auto mean_p = t.predict(batches, kiln::tta<kiln::mean_probabilities, kiln::hflip, kiln::vflip, hv_chain>{});
  CHECK(torch::allclose(mean_p, ((p(plain) + p(h) + p(v) + p(hv)) / 4).log(), 1e-5, 1e-6));

  const auto blended = t.predict(batches, kiln::tta<kiln::mean_probabilities, kiln::hflip, kiln::vflip>{.beta = 0.25});
  const auto variants = (p(h) + p(v)) / 2;
  CHECK(torch::allclose(blended, (variants + 0.25 * (p(plain) - variants)).log(), 1e-5, 1e-6));
  CHECK(torch::allclose(torch::softmax(blended, 1).sum(1), torch::ones({7}), 1e-5));

  const auto max_p = t.predict(batches, kiln::tta<kiln::max_probabilities, kiln::hflip>{});
  CHECK(torch::allclose(max_p, torch::maximum(p(plain), p(h)).log(), 1e-5, 1e-6));

  const auto logits = t.predict(batches, kiln::tta<kiln::mean_logits, kiln::hflip, kiln::vflip>{.beta = 0.5});
  CHECK(torch::allclose(logits, (h + v) / 2 + 0.5 * (plain - (h + v) / 2), 1e-5, 1e-6));

  const auto geometric = t.predict(batches, kiln::tta<kiln::geometric_mean, kiln::hflip>{});
  const auto g = (p(plain) * p(h)).sqrt();
  CHECK(torch::allclose(geometric.exp(), g / g.sum(1, true), 1e-5, 1e-6));

  CHECK(kiln::test::message_of([&] { t.predict(batches, kiln::tta<kiln::mean_logits, kiln::hflip>{.beta = 1.5}); }) ==
        "kiln::tta: beta must be in [0, 1], got 1.5");
}

TEST_CASE("kiln::dense_tta takes each variant's outputs back through its inverses, in reverse order") {
  torch::manual_seed(3);
  const auto x = torch::rand({2, 3, 5, 8});  // not square: a quarter turn makes it 8 × 5
  using flip_then_turn = kiln::chain<kiln::hflip, kiln::rot90<1>>;
  using turn_then_flip = kiln::chain<kiln::rot90<1>, kiln::vflip>;

  // The identity model: every pass taken back is the image itself, only if each inverse is right
  // and the chain's are applied last first (hflip and rot90 do not commute).
  kiln::trainer same{kiln::backbone<Same>{}, kiln::loss{[](const torch::Tensor& o, const torch::Tensor& y) {
                       return (o - y).pow(2).mean();
                     }}};
  // an identity "model" outputs images, not scores: merge them as values
  kiln::trainer values{kiln::backbone<Same>{}, kiln::mse{}};
  const auto merged = values.predict(std::vector<torch::Tensor>{x},
                                     kiln::dense_tta<kiln::mean_logits, kiln::rot90<3>, flip_then_turn, turn_then_flip>{});
  CHECK(torch::allclose(merged, x, 0, 1e-7));

  // A model that is not symmetric: equal to the passes taken back by hand.
  kiln::trainer dense{kiln::backbone<PixelNet>{}};
  torch::NoGradGuard no_grad;
  dense.model()->eval();
  auto f = [&](const torch::Tensor& in) { return dense.model()->forward(in); };
  const auto by_hand = (f(x).softmax(1) + f(x.flip({3}).rot90(1, {2, 3})).rot90(-1, {2, 3}).flip({3}).softmax(1) +
                        f(x.rot90(1, {2, 3}).flip({2})).flip({2}).rot90(-1, {2, 3}).softmax(1)) / 3;
  const auto ours = dense.predict(std::vector<torch::Tensor>{x},
                                  kiln::dense_tta<kiln::mean_probabilities, flip_then_turn, turn_then_flip>{});
  CHECK(ours.sizes() == std::vector<std::int64_t>{2, 2, 5, 8});
  CHECK(torch::allclose(ours, by_hand.log(), 1e-5, 1e-6));

  // The per-sample kiln::tta on dense outputs: the turned pass has another shape.
  CHECK(kiln::test::message_of([&] { dense.predict(std::vector<torch::Tensor>{x}, kiln::tta<kiln::mean_logits, kiln::rot90<1>>{}); }) ==
        "kiln::tta: a variant's outputs are [2, 2, 8, 5] but the plain pass's are [2, 2, 5, 8]; a dense model needs "
        "kiln::dense_tta, which inverts them");
}

TEST_CASE("kiln::tta with kiln::ensemble: each member's merged outputs combined") {
  torch::manual_seed(5);
  kiln::trainer a{kiln::backbone<SmallCnn>{}}, b{kiln::backbone<SmallCnn>{}};
  const auto x = torch::rand({6, 3, 6, 10});
  std::vector<torch::Tensor> data{x};
  const kiln::tta<kiln::mean_logits, kiln::hflip> tta{};
  const auto combined = kiln::ensemble::predict(kiln::ensemble::soft_vote{}, std::tie(a, b), data, tta);
  const auto by_hand = (torch::softmax(a.predict(data, tta), 1) + torch::softmax(b.predict(data, tta), 1)) / 2;
  CHECK(torch::allclose(combined, by_hand.to(combined.scalar_type()), 1e-6, 1e-7));
}
