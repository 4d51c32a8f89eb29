// The augment role in a trainer: transforms reach the training batches only, in the order
// written, with options from kiln::config; a resumed run draws the augmentations the
// uninterrupted one drew; MixUp and CutMix equal their definitions for fixed draws.
#include "../support.hpp"

#include <kiln/augment/augment.hpp>
#include <kiln/augment/mix.hpp>
#include <kiln/augment/transforms.hpp>
#include <kiln/config/config.hpp>
#include <kiln/kiln.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// A small CNN on one-channel 8 × 8 images that keeps the last batch it saw.
struct SeeingCnnImpl : torch::nn::Module {
  torch::nn::Conv2d conv{torch::nn::Conv2dOptions(1, 4, 3).padding(1)};
  torch::nn::Linear fc{4 * 8 * 8, 3};
  torch::Tensor seen;
  SeeingCnnImpl() {
    register_module("conv", conv);
    register_module("fc", fc);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    seen = x.detach().clone();
    return fc(torch::relu(conv(x)).flatten(1));
  }
};
TORCH_MODULE(SeeingCnn);

struct images {
  torch::Tensor x, y;
};

images make_images(std::int64_t n, std::uint64_t seed) {
  torch::manual_seed(seed);
  auto y = torch::randint(0, 3, {n}, torch::kLong);
  auto x = torch::rand({n, 1, 8, 8}) * 0.5;
  // class k brightens row band k: something to learn that survives small shifts
  for (std::int64_t k = 0; k < 3; ++k) {
    x.index_put_({y == k, 0, torch::indexing::Slice(2 * k, 2 * k + 3)}, 0.9);
  }
  return {x, y};
}

fs::path fresh_dir(const std::string& name) { return kiln::test::fresh_dir("augment", name); }

auto shifted() {
  return kiln::augment{kiln::random_crop{.size = {8, 8}, .padding = 2, .padding_mode = kiln::padding_mode::edge},
                       kiln::random_affine{.degrees = {-10, 10}, .interpolation = kiln::interpolation::bilinear},
                       kiln::mixup{.classes = 3, .p = 0.5}};
}

}  // namespace

TEST_CASE("kiln::augment transforms the training batches, in the order written, and nothing else") {
  const auto d = make_images(24, 1);
  // normalize then a second normalize: (x − 1) / 2, then (· + 3) / 4, so the order shows
  kiln::trainer t{kiln::backbone<SeeingCnn>{},
                  kiln::augment{kiln::normalize{.mean = {1.0}, .std = {2.0}}, kiln::resize{.size = {8, 8}},
                                kiln::center_crop{.size = {8, 8}}},
                  kiln::sgd{.lr = 0.0}};
  kiln::data::tensor_batches batches{d.x, d.y, {.batch_size = 24}};
  t.fit(batches, {.epochs = 1});
  CHECK(torch::allclose(t.backbone()->seen, (d.x - 1.0) / 2.0));
  t.validate(batches);
  CHECK(torch::equal(t.backbone()->seen, d.x));
  t.predict(batches);
  CHECK(torch::equal(t.backbone()->seen, d.x));
}

TEST_CASE("kiln::augment: the seed fixes the draws; each rank draws its own") {
  const auto d = make_images(16, 2);
  auto seen_after_one_epoch = [&](std::int64_t seed, std::int64_t rank) {
    kiln::trainer t{kiln::backbone<SeeingCnn>{},
                    kiln::augment{kiln::random_crop{.size = {8, 8}, .padding = 2}, kiln::random_horizontal_flip{}}.seeded(seed),
                    kiln::sgd{.lr = 0.0}};
    t.augmentation().to(torch::kCPU, rank);
    kiln::data::tensor_batches batches{d.x, d.y, {.batch_size = 16}};
    t.fit(batches, {.epochs = 1});
    return t.backbone()->seen;
  };
  const auto a = seen_after_one_epoch(5, 0);
  CHECK(torch::equal(a, seen_after_one_epoch(5, 0)));
  CHECK_FALSE(torch::equal(a, seen_after_one_epoch(6, 0)));
  CHECK_FALSE(torch::equal(a, seen_after_one_epoch(5, 1)));
  CHECK_FALSE(torch::equal(a, d.x));
}

TEST_CASE("kiln::config reaches each transform's options and the seed") {
  const char* argv[] = {"prog", "--set", "augment.random_crop.padding=4", "--set", "augment.seed=17",
                        "--set", "augment.mixup.alpha=0.2", "--set", "augment.random_affine.degrees=[-5, 5]"};
  auto cfg = kiln::config::from_command_line(9, argv);
  kiln::trainer t{cfg, kiln::backbone<SeeingCnn>{}, shifted()};
  const auto& [crop, affine, mix] = t.augmentation().transforms();
  CHECK(crop.padding == 4);
  CHECK(mix.alpha == 0.2);
  CHECK(affine.degrees == std::vector<double>{-5, 5});
  CHECK(t.augmentation().seed() == 17);
  CHECK(kiln::test::contains(t.state().hyperparameters, "\"augment.random_crop.padding\": 4"));

  const char* bad[] = {"prog", "--set", "augment.random_crop.padding=-1"};
  auto bad_cfg = kiln::config::from_command_line(3, bad);
  CHECK(kiln::test::message_of([&] { kiln::trainer u{bad_cfg, kiln::backbone<SeeingCnn>{}, shifted()}; }) ==
        "kiln::random_crop: padding must be at least 0, got -1 (the configuration set augment.random_crop.padding = "
        "-1 from --set)");
}

TEST_CASE("a run with augmentation resumed from its checkpoint ends bit-identical to the unstopped run") {
  const auto d = make_images(60, 3);
  kiln::data::tensor_batches batches{d.x, d.y, {.batch_size = 12, .shuffle = true, .seed = 4}};
  const auto whole = fresh_dir("whole"), parts = fresh_dir("parts");
  auto make = [&](const fs::path& dir) {
    return kiln::trainer{kiln::backbone<SeeingCnn>{}, shifted(), kiln::sgd{.lr = 0.1, .momentum = 0.9},
                         kiln::callbacks{kiln::model_checkpoint{.directory = dir, .monitor = "train/loss"}}};
  };
  torch::manual_seed(8);
  auto reference = make(whole);
  const auto expected = reference.fit(batches, {.epochs = 4});
  torch::Tensor generator_after_two;
  {
    torch::manual_seed(8);
    auto first = make(parts);
    first.fit(batches, {.epochs = 2});
    generator_after_two = first.augmentation().state();
  }
  // The checkpoint carries the generator where the stopped run left it; a fresh trainer's differs.
  torch::manual_seed(1);
  auto fresh = make(parts);
  CHECK_FALSE(torch::equal(fresh.augmentation().state(), generator_after_two));
  fresh.load_checkpoint(parts / "last.pt");
  CHECK(torch::equal(fresh.augmentation().state(), generator_after_two));
  torch::manual_seed(1);  // another seed drawn, other weights: the checkpoint must replace both
  auto resumed = make(parts);
  const auto history = resumed.fit(batches, {.epochs = 4, .resume_from = parts / "last.pt"});
  CHECK(kiln::test::same_state(resumed.model(), reference.model()));
  REQUIRE(history.size() == expected.size());
  CHECK(history.back().at("train/loss") == expected.back().at("train/loss"));

}

TEST_CASE("kiln::mixup and kiln::cutmix equal their definitions for the drawn λ and box") {
  torch::manual_seed(4);
  const auto x = torch::rand({5, 3, 6, 7});
  const auto y = torch::tensor({0, 2, 1, 1, 0}, torch::kLong);
  const auto one_hot = torch::one_hot(y, 3).to(torch::kFloat);
  auto g = kiln::detail::seeded_generator(torch::kCPU, 3);

  const kiln::mixup mix{.classes = 3, .alpha = 0.7, .p = 1.0};
  const auto q = mix.draw(g);
  const double lambda = q.lambda.item<double>();
  CHECK(lambda > 0.0);
  CHECK(lambda < 1.0);
  auto mx = x.clone(), my = y.clone();
  mix.apply(mx, my, q);
  const auto partner = torch::tensor({4, 0, 1, 2, 3}, torch::kLong);  // the batch rolled by one
  CHECK(torch::allclose(mx, lambda * x + (1 - lambda) * x.index_select(0, partner)));
  CHECK(torch::allclose(my, lambda * one_hot + (1 - lambda) * one_hot.index_select(0, partner)));

  const kiln::cutmix cut{.classes = 3, .p = 1.0};
  auto box = cut.draw(6, 7, g);
  box = {torch::tensor(1L), torch::tensor(4L), torch::tensor(2L), torch::tensor(7L)};  // rows 1..3, columns 2..6
  auto cx = x.clone(), cy = y.clone();
  cut.apply(cx, cy, box);
  auto expected = x.clone();
  using torch::indexing::Slice;
  expected.index_put_({Slice(), Slice(), Slice(1, 4), Slice(2, 7)},
                      x.index_select(0, partner).index({Slice(), Slice(), Slice(1, 4), Slice(2, 7)}));
  CHECK(torch::equal(cx, expected));
  const double kept = 1.0 - 15.0 / 42.0;
  CHECK(torch::allclose(cy, kept * one_hot + (1 - kept) * one_hot.index_select(0, partner)));

  // p = 0: nothing mixed, the targets as probabilities
  const kiln::mixup never{.classes = 3, .p = 0.0};
  auto nx = x.clone(), ny = y.clone();
  never(nx, ny, g);
  CHECK(torch::equal(nx, x));
  CHECK(torch::equal(ny, one_hot));

  CHECK(kiln::test::message_of([&] {
          auto bx = x.clone(), by = torch::tensor({0, 1, 2, 3, 4}, torch::kLong).view({5, 1});
          mix(bx, by, g);
        }) == "kiln::mixup: class-index targets must be [N], got [5, 1]; dense targets cannot be mixed");
  CHECK(kiln::test::message_of([] { kiln::mixup{}.validate(); }) ==
        "kiln::mixup: classes must be the number of classes (at least 2), for the mixed targets, got 0");
}

TEST_CASE("a transform on data it cannot apply to is an error naming the transform and the shape") {
  auto g = kiln::detail::seeded_generator(torch::kCPU, 1);
  CHECK(kiln::test::message_of([&] { kiln::random_crop{.size = {10, 10}}(torch::rand({2, 1, 8, 8}), g); }) ==
        "kiln::random_crop (after padding): a window of 10 x 10 does not fit in images of 8 x 8 (batch [2, 1, 8, 8]); "
        "use a smaller size or more padding");
  CHECK(kiln::test::message_of([&] { kiln::color_jitter{.brightness = 0.2}(torch::rand({2, 2, 8, 8}), g); }) ==
        "kiln::color_jitter: the batch must be a floating-point batch of images [N, C, H, W] with C = 1 or 3, got "
        "[2, 2, 8, 8] Float");
  CHECK(kiln::test::message_of([&] { kiln::normalize{.mean = {0.5, 0.5}, .std = {1, 1}}(torch::rand({2, 3, 4, 4})); }) ==
        "kiln::normalize: mean and std have 2 values but the images have 3 channels [2, 3, 4, 4]");
  CHECK(kiln::test::message_of([] { kiln::random_resized_crop{.size = {8, 8}, .scale = {0.5, 0.1}}.validate(); }) ==
        "kiln::random_resized_crop: scale must be {min, max} with 0 <= min <= max <= 1, got {0.5, 0.1}");
  // A feature batch [N, F] in a pipeline that augments images: named at the first batch.
  const auto toy = kiln::test::make_toy(8);
  kiln::trainer t{kiln::backbone<kiln::test::Mlp>{}, kiln::augment{kiln::random_horizontal_flip{}}};
  kiln::data::tensor_batches batches{toy.x, toy.y, {.batch_size = 8}};
  CHECK(kiln::test::message_of([&] { t.fit(batches); }) ==
        "kiln::random_horizontal_flip: the batch must be a floating-point batch of images [N, C, H, W], got [8, 8] Float");
}
