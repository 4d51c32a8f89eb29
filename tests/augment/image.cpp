// kiln::image's batched operations against torchvision.transforms.functional (0.14) for the
// same parameters, within 1e-5, on random non-square images: each image of a batch with its own
// parameters, torchvision one image at a time (tests/reference/torchvision_functional.py).
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/augment/image.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

struct image_case {
  std::string op;
  torch::Tensor images;              // [N, C, H, W] float32
  std::vector<json> params;          // one per image (or none)
  json args = json::object();
  torch::Tensor ours;                // kiln's result

  [[nodiscard]] json to_json() const {
    const auto flat = images.to(torch::kDouble).contiguous();
    return {{"op", op},
            {"images", std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel())},
            {"shape", images.sizes().vec()},
            {"params", params},
            {"args", args}};
  }
};

torch::Tensor longs(const std::vector<std::int64_t>& v) { return torch::tensor(v, torch::kLong); }
torch::Tensor doubles(const std::vector<double>& v) { return torch::tensor(v, torch::kDouble); }

std::vector<image_case> cases() {
  torch::manual_seed(11);
  const auto rgb = torch::rand({3, 3, 9, 13});
  const auto gray = torch::rand({3, 1, 9, 13});
  std::vector<image_case> out;
  auto add = [&](std::string op, const torch::Tensor& x, std::vector<json> params, json args, torch::Tensor ours) {
    out.push_back({std::move(op), x, std::move(params), std::move(args), std::move(ours)});
  };
  add("hflip", rgb, {}, {}, kiln::image::hflip(rgb));
  add("vflip", rgb, {}, {}, kiln::image::vflip(rgb));
  for (const auto& [name, mode] : kiln::enum_names(kiln::padding_mode{})) {
    add("pad", rgb, {}, {{"left", 3}, {"top", 1}, {"right", 2}, {"bottom", 4}, {"mode", name}, {"fill", 0.25}},
        kiln::image::pad(rgb, 3, 1, 2, 4, mode, 0.25));
  }
  {
    const std::vector<std::int64_t> top{0, 3, 4}, left{5, 0, 7};
    std::vector<json> params;
    for (int i = 0; i < 3; ++i) params.push_back({{"top", top[i]}, {"left", left[i]}});
    add("crop", rgb, params, {{"height", 5}, {"width", 6}}, kiln::image::crop_each(rgb, longs(top), longs(left), 5, 6));
  }
  add("resize", rgb, {}, {{"height", 5}, {"width", 17}, {"mode", "bilinear"}}, kiln::image::resize(rgb, 5, 17));
  add("resize", rgb, {}, {{"height", 14}, {"width", 6}, {"mode", "nearest"}},
      kiln::image::resize(rgb, 14, 6, kiln::interpolation::nearest));
  {
    const std::vector<std::int64_t> top{0, 2, 5}, left{1, 0, 4}, h{9, 4, 3}, w{7, 13, 9};
    std::vector<json> params;
    for (int i = 0; i < 3; ++i) params.push_back({{"top", top[i]}, {"left", left[i]}, {"height", h[i]}, {"width", w[i]}});
    add("resized_crop", rgb, params, {{"height", 8}, {"width", 6}},
        kiln::image::resized_crop_each(rgb, longs(top), longs(left), longs(h), longs(w), 8, 6));
  }
  add("center_crop", rgb, {}, {{"height", 4}, {"width", 8}}, kiln::image::center_crop(rgb, 4, 8));
  add("center_crop", rgb, {}, {{"height", 12}, {"width", 16}}, kiln::image::center_crop(rgb, 12, 16));
  for (const auto& [name, mode] : kiln::enum_names(kiln::interpolation{})) {
    const std::vector<double> angle{17.5, -63.0, 0.0}, tx{2, -1, 0}, ty{0, 3, -2}, scale{1.0, 0.8, 1.3},
        shear_x{0.0, 12.0, -7.5}, shear_y{0.0, 0.0, 9.0};
    std::vector<json> params;
    for (int i = 0; i < 3; ++i) {
      params.push_back({{"angle", angle[i]}, {"tx", tx[i]}, {"ty", ty[i]}, {"scale", scale[i]},
                        {"shear_x", shear_x[i]}, {"shear_y", shear_y[i]}});
    }
    add("affine", rgb, params, {{"mode", name}, {"fill", 0.5}},
        kiln::image::affine(rgb, doubles(angle), doubles(tx), doubles(ty), doubles(scale), doubles(shear_x),
                            doubles(shear_y), mode, 0.5));
    const std::vector<double> rotation{33.0, -90.0, 145.25};
    params.clear();
    for (const double a : rotation) params.push_back({{"angle", a}});
    add("rotate", rgb, params, {{"mode", name}, {"fill", 0.0}}, kiln::image::rotate(rgb, doubles(rotation), mode, 0.0));
  }
  const std::vector<double> factors{0.3, 1.0, 1.7};
  std::vector<json> factor_params;
  for (const double f : factors) factor_params.push_back({{"factor", f}});
  for (const auto& x : {rgb, gray}) {
    add("brightness", x, factor_params, {}, kiln::image::adjust_brightness(x, doubles(factors)));
    add("contrast", x, factor_params, {}, kiln::image::adjust_contrast(x, doubles(factors)));
    add("saturation", x, factor_params, {}, kiln::image::adjust_saturation(x, doubles(factors)));
  }
  add("grayscale", rgb, {}, {}, kiln::image::grayscale(rgb));
  add("normalize", rgb, {}, {{"mean", {0.485, 0.456, 0.406}}, {"std", {0.229, 0.224, 0.225}}},
      kiln::image::normalize(rgb, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}));
  {
    const std::vector<std::int64_t> top{1, 0, 6}, left{2, 9, 0}, h{3, 9, 2}, w{4, 4, 13};
    const std::vector<bool> apply{true, true, false};
    std::vector<json> params;
    for (int i = 0; i < 3; ++i) {
      params.push_back({{"top", top[i]}, {"left", left[i]}, {"height", h[i]}, {"width", w[i]}, {"apply", apply[i]}});
    }
    add("erase", rgb, params, {{"value", {0.1, -0.2, 0.3}}},
        kiln::image::erase(rgb, longs(top), longs(left), longs(h), longs(w), {0.1, -0.2, 0.3},
                           torch::tensor({true, true, false})));
  }
  {
    const std::vector<double> sigma{0.4, 1.1, 2.0};
    std::vector<json> params;
    for (const double s : sigma) params.push_back({{"sigma", s}});
    add("gaussian_blur", rgb, params, {{"kernel_width", 5}, {"kernel_height", 3}},
        kiln::image::gaussian_blur(rgb, 5, 3, doubles(sigma)));
  }
  return out;
}

}  // namespace

TEST_CASE("kiln::image: every operation equals torchvision's functional one within 1e-5") {
  const auto all = cases();
  json input = {{"cases", json::array()}};
  for (const auto& c : all) input["cases"].push_back(c.to_json());
  const json reference = kiln::test::run_reference("torchvision_functional.py", input);
  REQUIRE(reference["results"].size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    CAPTURE(all[i].op);
    CAPTURE(all[i].args.dump());
    const auto expected = torch::tensor(reference["results"][i].get<std::vector<double>>(), torch::kDouble);
    const auto ours = all[i].ours.to(torch::kDouble).flatten();
    REQUIRE(ours.numel() == expected.numel());
    const double difference = (ours - expected).abs().max().item<double>();
    CHECK(difference <= 1e-5);
  }
}

TEST_CASE("kiln::image: a batch that is not images [N, C, H, W] is an error naming the transform and the shape") {
  const auto one_image = torch::rand({3, 8, 8});
  CHECK(kiln::test::message_of([&] { kiln::image::check_images("kiln::random_crop", one_image); }) ==
        "kiln::random_crop: the batch must be a floating-point batch of images [N, C, H, W], got [3, 8, 8] Float "
        "(one image [C, H, W]: add the batch dimension with unsqueeze(0))");
  CHECK(kiln::test::message_of([&] { kiln::image::check_images("kiln::color_jitter", torch::rand({2, 4, 8, 8}), {1, 3}); }) ==
        "kiln::color_jitter: the batch must be a floating-point batch of images [N, C, H, W] with C = 1 or 3, got "
        "[2, 4, 8, 8] Float");
  CHECK(kiln::test::message_of([&] {
          kiln::image::check_images("kiln::normalize", torch::zeros({2, 3, 8, 8}, torch::kUInt8));
        }).find("got [2, 3, 8, 8] Byte") != std::string::npos);
}
