// Each random transform draws its parameters from the distributions torchvision's get_params
// draws them from: 4000 draws of kiln's (a batch of 4000 images at once) against 4000 of
// torchvision's (tests/reference/torchvision_params.py), per parameter: the two-sample
// Kolmogorov–Smirnov statistic below its critical value at α = 0.001, the means within five
// standard errors, and the same range. Each check can fail: a wrong bound, a missing rounding, a
// uniform draw where torchvision's is log-uniform all move the statistic far past its limit.
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/augment/augment.hpp>
#include <kiln/augment/mix.hpp>
#include <kiln/augment/transforms.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
constexpr std::int64_t draws = 4000;

std::vector<double> values(const torch::Tensor& t) {
  const auto d = t.to(torch::kDouble).contiguous().flatten();
  return {d.data_ptr<double>(), d.data_ptr<double>() + d.numel()};
}

/// sup |F_a − F_b| over the pooled sample, ties taken together.
double ks_statistic(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t i = 0, j = 0;
  double d = 0.0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / static_cast<double>(a.size()) -
                             static_cast<double>(j) / static_cast<double>(b.size())));
  }
  return d;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double variance(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (const double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size() - 1);
}

void same_distribution(const std::string& what, const std::vector<double>& ours, const std::vector<double>& theirs) {
  CAPTURE(what);
  REQUIRE(ours.size() == theirs.size());
  const auto n = static_cast<double>(ours.size());
  const double critical = 1.949 * std::sqrt(2.0 / n);  // α = 0.001, two samples of n
  CHECK(ks_statistic(ours, theirs) < critical);
  const double standard_error = std::sqrt((variance(ours) + variance(theirs)) / n);
  CHECK(std::abs(mean(ours) - mean(theirs)) <= 5 * standard_error + 1e-12);
  const auto [our_min, our_max] = std::minmax_element(ours.begin(), ours.end());
  const auto [their_min, their_max] = std::minmax_element(theirs.begin(), theirs.end());
  const double spread = *their_max - *their_min;
  // the extremes are rare draws: the same within a tenth of the range
  CHECK(std::abs(*our_min - *their_min) <= 0.1 * spread + 1e-9);
  CHECK(std::abs(*our_max - *their_max) <= 0.1 * spread + 1e-9);
}

}  // namespace

TEST_CASE("kiln's random transforms draw their parameters as torchvision's get_params do") {
  const json reference = kiln::test::run_reference("torchvision_params.py", {{"draws", draws}, {"seed", 3}});
  auto g = kiln::detail::seeded_generator(torch::kCPU, 12345);
  auto theirs = [&](const char* transform, const char* parameter) {
    return reference[transform][parameter].get<std::vector<double>>();
  };

  SUBCASE("random_crop") {
    const auto q = kiln::random_crop{.size = {24, 24}, .padding = 4}.draw(draws, 36, 36, g);
    same_distribution("top", values(q.top), theirs("random_crop", "top"));
    same_distribution("left", values(q.left), theirs("random_crop", "left"));
  }
  SUBCASE("random_resized_crop") {
    const auto q = kiln::random_resized_crop{.size = {8, 8}}.draw(draws, 30, 40, g);
    same_distribution("top", values(q.top), theirs("random_resized_crop", "top"));
    same_distribution("left", values(q.left), theirs("random_resized_crop", "left"));
    same_distribution("height", values(q.heights), theirs("random_resized_crop", "height"));
    same_distribution("width", values(q.widths), theirs("random_resized_crop", "width"));
  }
  SUBCASE("random_rotation") {
    const auto q = kiln::random_rotation{.degrees = {-30, 45}}.draw(draws, 30, 40, g);
    same_distribution("angle", values(q.angle), theirs("random_rotation", "angle"));
  }
  SUBCASE("random_affine") {
    const auto q = kiln::random_affine{.degrees = {-10, 10}, .translate = {0.1, 0.2}, .scale = {0.9, 1.1},
                                       .shear = {-5, 5, -3, 3}}
                       .draw(draws, 30, 40, g);
    same_distribution("angle", values(q.angle), theirs("random_affine", "angle"));
    same_distribution("tx", values(q.tx), theirs("random_affine", "tx"));
    same_distribution("ty", values(q.ty), theirs("random_affine", "ty"));
    same_distribution("scale", values(q.scale), theirs("random_affine", "scale"));
    same_distribution("shear_x", values(q.shear_x), theirs("random_affine", "shear_x"));
    same_distribution("shear_y", values(q.shear_y), theirs("random_affine", "shear_y"));
  }
  SUBCASE("color_jitter") {
    const auto q = kiln::color_jitter{.brightness = 0.4, .contrast = 0.3, .saturation = 0.2}.draw(draws, 8, 8, g);
    same_distribution("brightness", values(q.factors.select(1, 0)), theirs("color_jitter", "brightness"));
    same_distribution("contrast", values(q.factors.select(1, 1)), theirs("color_jitter", "contrast"));
    same_distribution("saturation", values(q.factors.select(1, 2)), theirs("color_jitter", "saturation"));
    // where brightness (operation 0) comes in each image's order
    const auto position = (q.order == 0).to(torch::kLong).argmax(1);
    same_distribution("brightness position", values(position), theirs("color_jitter", "brightness_position"));
  }
  SUBCASE("random_erasing") {
    const auto q = kiln::random_erasing{.p = 1.0}.draw(draws, 32, 20, g);
    // torchvision's get_params gives the whole image when ten tries fail; kiln erases nothing then
    const auto found = q.erase;
    same_distribution("top", values(torch::where(found, q.top, 0)), theirs("random_erasing", "top"));
    same_distribution("left", values(torch::where(found, q.left, 0)), theirs("random_erasing", "left"));
    same_distribution("height", values(torch::where(found, q.heights, 32)), theirs("random_erasing", "height"));
    same_distribution("width", values(torch::where(found, q.widths, 20)), theirs("random_erasing", "width"));
  }
  SUBCASE("gaussian_blur") {
    const auto q = kiln::gaussian_blur{.kernel_size = {3, 3}, .sigma = {0.1, 2.0}}.draw(draws, 8, 8, g);
    same_distribution("sigma", values(q.sigma), theirs("gaussian_blur", "sigma"));
  }
  SUBCASE("random_horizontal_flip") {
    const auto q = kiln::random_horizontal_flip{.p = 0.3}.draw(draws, 8, 8, g);
    same_distribution("flip", values(q.flip), theirs("random_horizontal_flip", "flip"));
  }
  SUBCASE("mixup and cutmix, one draw per batch") {
    std::vector<double> lambdas;
    const kiln::mixup mix{.classes = 3, .alpha = 0.4, .p = 1.0};
    for (std::int64_t i = 0; i < draws; ++i) lambdas.push_back(mix.draw(g).lambda.item<double>());
    same_distribution("mixup lambda", lambdas, theirs("mixup", "lambda"));
    std::map<std::string, std::vector<double>> box;
    const kiln::cutmix cut{.classes = 3, .alpha = 1.0, .p = 1.0};
    for (std::int64_t i = 0; i < draws; ++i) {
      const auto q = cut.draw(30, 40, g);
      box["y1"].push_back(q.y1.item<double>());
      box["y2"].push_back(q.y2.item<double>());
      box["x1"].push_back(q.x1.item<double>());
      box["x2"].push_back(q.x2.item<double>());
    }
    for (const auto& [name, v] : box) same_distribution("cutmix " + name, v, theirs("cutmix", name.c_str()));
  }
}

TEST_CASE("the distribution check fails on a distribution that differs") {
  // The same statistics, against draws that are off: random_crop offsets in [0, 9] where
  // torchvision's are in [0, 12], and aspect ratios in [1/2, 2] where they are in [3/4, 4/3].
  const json reference = kiln::test::run_reference("torchvision_params.py", {{"draws", draws}, {"seed", 4}});
  auto g = kiln::detail::seeded_generator(torch::kCPU, 99);
  const auto top = kiln::random_crop{.size = {24, 24}}.draw(draws, 33, 33, g).top;
  const auto theirs = reference["random_crop"]["top"].get<std::vector<double>>();
  CHECK(std::abs(mean(values(top)) - mean(theirs)) > 5 * std::sqrt((variance(values(top)) + variance(theirs)) / draws));
  const auto heights = kiln::random_resized_crop{.size = {8, 8}, .ratio = {0.5, 2.0}}.draw(draws, 30, 40, g).heights;
  CHECK(ks_statistic(values(heights), reference["random_resized_crop"]["height"].get<std::vector<double>>()) >
        1.949 * std::sqrt(2.0 / draws));
}
