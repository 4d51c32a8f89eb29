// kiln/augment/transforms.hpp — the transforms of a kiln::augment<...> (kiln/augment/augment.hpp),
// torchvision's, on whole batches [N, C, H, W] on the device:
//
//   kiln::random_horizontal_flip{.p}     mirror left to right, each image with probability p
//   kiln::random_vertical_flip{.p}       mirror top to bottom
//   kiln::random_crop{.size, .padding, .padding_mode, .fill}
//                                        pad, then a window of `size` at a uniform position
//   kiln::random_resized_crop{.size, .scale, .ratio}
//                                        a window of random area and aspect, resized to `size`
//   kiln::random_rotation{.degrees, .interpolation, .fill}
//   kiln::random_affine{.degrees, .translate, .scale, .shear, .interpolation, .fill}
//   kiln::color_jitter{.brightness, .contrast, .saturation}
//                                        each factor uniform in [max(0, 1 − v), 1 + v], applied in
//                                        a random order per image
//   kiln::random_erasing{.p, .scale, .ratio, .value}
//   kiln::gaussian_blur{.kernel_size, .sigma}
//   kiln::resize{.size, .interpolation}, kiln::center_crop{.size}, kiln::normalize{.mean, .std}
//                                        the same for every image
//
// Each image draws its own parameters, from the distributions torchvision's get_params draws
// them from (tests/augment/ compares them over many draws), with the augmentation's generator:
// `draw(n, height, width, generator)` returns them, `apply(x, parameters)` uses them, and a
// transform called as `t(x, generator)` does both. The operations are kiln::image's
// (kiln/augment/image.hpp), equal to torchvision's functional ones for the same parameters.
// Options are torchvision's, with its defaults; each lists them in each_option, so that
// kiln::config sets them ("augment.random_crop.padding"), and checks them in validate().
//
//   kiln::augment{kiln::random_crop{.size = {32, 32}, .padding = 4}, kiln::random_horizontal_flip{},
//                 kiln::normalize{.mean = {0.4914, 0.4822, 0.4465}, .std = {0.247, 0.243, 0.261}}}
#pragma once

#include <kiln/augment/image.hpp>
#include <kiln/detail/check.hpp>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln {
namespace detail {

/// n values uniform in [low, high), double, drawn with `generator` on its device.
inline torch::Tensor uniform(std::int64_t n, double low, double high, at::Generator& generator) {
  return torch::rand({n}, generator, torch::TensorOptions(generator.device()).dtype(torch::kDouble))
      .mul_(high - low)
      .add_(low);
}

/// n booleans, each true with probability p.
inline torch::Tensor bernoulli(std::int64_t n, double p, at::Generator& generator) {
  return torch::rand({n}, generator, torch::TensorOptions(generator.device()).dtype(torch::kDouble)) < p;
}

/// Integers uniform in [0, high] for each sample's own `high` (int64 [N]).
inline torch::Tensor integers_up_to(const torch::Tensor& high, at::Generator& generator) {
  const auto u = torch::rand(high.sizes(), generator, torch::TensorOptions(generator.device()).dtype(torch::kDouble));
  return (u * (high + 1).to(torch::kDouble)).floor_().to(torch::kLong).minimum(high);
}

/// A random transform called on a batch: the batch checked, each image's parameters drawn, applied.
template <class T>
torch::Tensor draw_and_apply(const T& t, std::string_view where, const torch::Tensor& x, at::Generator& g) {
  image::check_images(where, x);
  return t.apply(x, t.draw(x.size(0), x.size(2), x.size(3), g));
}

KILN_DECL void check_range(std::string_view transform, std::string_view name, const std::vector<double>& range,
                           double low, double high);
KILN_DECL void check_size(std::string_view transform, const std::vector<std::int64_t>& size);
KILN_DECL void check_fits(std::string_view transform, const torch::Tensor& x, std::int64_t height, std::int64_t width);

/// For each of n images of height × width, the first of 10 tries that gives a window inside the
/// image (torchvision's rejection loop, run for all images at once): the area a fraction of the
/// image's uniform in `scale`, the log of the aspect ratio uniform in log(`ratio`). Returns the
/// heights, widths and whether a try succeeded; `erasing` uses RandomErasing's rule (h from
/// area × aspect, strictly smaller than the image), else RandomResizedCrop's.
struct window_tries {
  torch::Tensor heights, widths, found;
};
KILN_DECL window_tries try_windows(std::int64_t n, std::int64_t height, std::int64_t width,
                                   const std::vector<double>& scale, const std::vector<double>& ratio, bool erasing,
                                   at::Generator& generator);

}  // namespace detail

namespace detail {

/// Mirrors each image along `Dim` (-1: left to right, -2: top to bottom) with probability p.
template <int Dim>
struct random_flip {
  static constexpr std::string_view name = Dim == -1 ? "random_horizontal_flip" : "random_vertical_flip";
  static constexpr std::string_view where = Dim == -1 ? "kiln::random_horizontal_flip" : "kiln::random_vertical_flip";
  double p = 0.5;
  template <class F>
  void each_option(F&& f) { f("p", p); }
  void validate() const { check_in_range(where, "p", p, 0.0, 1.0); }
  struct parameters { torch::Tensor flip; };  ///< bool [N]
  parameters draw(std::int64_t n, std::int64_t, std::int64_t, at::Generator& g) const { return {bernoulli(n, p, g)}; }
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return torch::where(q.flip.view({-1, 1, 1, 1}), x.flip({Dim}), x);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    return draw_and_apply(*this, where, x, g);
  }
};

}  // namespace detail

/// Mirrors each image left to right with probability p (torchvision's RandomHorizontalFlip).
using random_horizontal_flip = detail::random_flip<-1>;
/// Mirrors each image top to bottom with probability p (torchvision's RandomVerticalFlip).
using random_vertical_flip = detail::random_flip<-2>;

/// Pads each image by `padding` on every side, then takes a window of `size` {height, width} at
/// a uniform position (torchvision's RandomCrop(size, padding, fill=fill, padding_mode=...)).
struct random_crop {
  static constexpr std::string_view name = "random_crop";
  std::vector<std::int64_t> size{};  ///< {height, width}
  std::int64_t padding = 0;
  kiln::padding_mode padding_mode = kiln::padding_mode::constant;
  double fill = 0.0;  ///< the value of constant padding
  template <class F>
  void each_option(F&& f) { f("size", size); f("padding", padding); f("padding_mode", padding_mode); f("fill", fill); }
  void validate() const {
    detail::check_size("kiln::random_crop", size);
    detail::check_option(padding >= 0, "kiln::random_crop", "padding", "at least 0", padding);
  }
  struct parameters { torch::Tensor top, left; };  ///< int64 [N], in the padded image
  /// Positions in a padded image of padded_height × padded_width.
  parameters draw(std::int64_t n, std::int64_t padded_height, std::int64_t padded_width, at::Generator& g) const {
    const auto options = torch::TensorOptions(g.device()).dtype(torch::kLong);
    return {detail::integers_up_to(torch::full({n}, padded_height - size[0], options), g),
            detail::integers_up_to(torch::full({n}, padded_width - size[1], options), g)};
  }
  torch::Tensor padded(const torch::Tensor& x) const {
    return padding == 0 ? x : image::pad(x, padding, padding, padding, padding, padding_mode, fill);
  }
  /// `x` padded already.
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return image::crop_each(x, q.top, q.left, size[0], size[1]);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    image::check_images("kiln::random_crop", x);
    const auto p = padded(x);
    detail::check_fits("kiln::random_crop (after padding)", p, size[0], size[1]);
    return apply(p, draw(x.size(0), p.size(2), p.size(3), g));
  }
};

/// A window of a random area (a fraction of the image's, uniform in `scale`) and aspect ratio
/// (log-uniform in `ratio`), resized bilinearly to `size` (torchvision's RandomResizedCrop, with
/// its fallback to a central window when ten tries fail).
struct random_resized_crop {
  static constexpr std::string_view name = "random_resized_crop";
  std::vector<std::int64_t> size{};  ///< {height, width} of the output
  std::vector<double> scale{0.08, 1.0};
  std::vector<double> ratio{3.0 / 4.0, 4.0 / 3.0};
  template <class F>
  void each_option(F&& f) { f("size", size); f("scale", scale); f("ratio", ratio); }
  void validate() const {
    detail::check_size("kiln::random_resized_crop", size);
    detail::check_range("kiln::random_resized_crop", "scale", scale, 0.0, 1.0);
    detail::check_range("kiln::random_resized_crop", "ratio", ratio, 1e-12, 1e12);
  }
  struct parameters { torch::Tensor top, left, heights, widths; };  ///< int64 [N]
  KILN_DECL parameters draw(std::int64_t n, std::int64_t height, std::int64_t width, at::Generator& g) const;
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return image::resized_crop_each(x, q.top, q.left, q.heights, q.widths, size[0], size[1]);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    return detail::draw_and_apply(*this, "kiln::random_resized_crop", x, g);
  }
};

/// Rotates each image by an angle uniform in `degrees` {min, max} about its center
/// (torchvision's RandomRotation(degrees, interpolation, fill=fill); the size is kept).
struct random_rotation {
  static constexpr std::string_view name = "random_rotation";
  std::vector<double> degrees{0.0, 0.0};
  kiln::interpolation interpolation = kiln::interpolation::nearest;
  double fill = 0.0;
  template <class F>
  void each_option(F&& f) { f("degrees", degrees); f("interpolation", interpolation); f("fill", fill); }
  void validate() const { detail::check_range("kiln::random_rotation", "degrees", degrees, -360.0, 360.0); }
  struct parameters { torch::Tensor angle; };  ///< double [N], degrees
  parameters draw(std::int64_t n, std::int64_t, std::int64_t, at::Generator& g) const {
    return {detail::uniform(n, degrees[0], degrees[1], g)};
  }
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return image::rotate(x, q.angle, interpolation, fill);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    return detail::draw_and_apply(*this, "kiln::random_rotation", x, g);
  }
};

/// An affine map about each image's center (torchvision's RandomAffine): an angle uniform in
/// `degrees`; a translation of at most translate[0] × width and translate[1] × height pixels,
/// rounded to whole pixels (empty: none); a scale uniform in `scale` (empty: 1); shears in
/// degrees uniform in `shear` {min, max} along x, or {x min, x max, y min, y max} (empty: none).
struct random_affine {
  static constexpr std::string_view name = "random_affine";
  std::vector<double> degrees{0.0, 0.0};
  std::vector<double> translate{};
  std::vector<double> scale{};
  std::vector<double> shear{};
  kiln::interpolation interpolation = kiln::interpolation::nearest;
  double fill = 0.0;
  template <class F>
  void each_option(F&& f) {
    f("degrees", degrees); f("translate", translate); f("scale", scale); f("shear", shear);
    f("interpolation", interpolation); f("fill", fill);
  }
  KILN_DECL void validate() const;
  struct parameters { torch::Tensor angle, tx, ty, scale, shear_x, shear_y; };  ///< double [N]
  KILN_DECL parameters draw(std::int64_t n, std::int64_t height, std::int64_t width, at::Generator& g) const;
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return image::affine(x, q.angle, q.tx, q.ty, q.scale, q.shear_x, q.shear_y, interpolation, fill);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    return detail::draw_and_apply(*this, "kiln::random_affine", x, g);
  }
};

/// Brightness, contrast and saturation, each by a factor uniform in [max(0, 1 − v), 1 + v] (0
/// leaves it out), applied in an order drawn for each image (torchvision's ColorJitter without
/// hue). Images must be in [0, 1]: jitter before normalize.
struct color_jitter {
  static constexpr std::string_view name = "color_jitter";
  double brightness = 0.0, contrast = 0.0, saturation = 0.0;
  template <class F>
  void each_option(F&& f) { f("brightness", brightness); f("contrast", contrast); f("saturation", saturation); }
  void validate() const {
    detail::check_non_negative("kiln::color_jitter", "brightness", brightness);
    detail::check_non_negative("kiln::color_jitter", "contrast", contrast);
    detail::check_non_negative("kiln::color_jitter", "saturation", saturation);
  }
  /// factors double [N, 3] (brightness, contrast, saturation); order int64 [N, 3], a
  /// permutation of 0, 1, 2 per image
  struct parameters { torch::Tensor factors, order; };
  KILN_DECL parameters draw(std::int64_t n, std::int64_t height, std::int64_t width, at::Generator& g) const;
  KILN_DECL torch::Tensor apply(const torch::Tensor& x, const parameters& q) const;
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    image::check_images("kiln::color_jitter", x, {1, 3});
    return apply(x, draw(x.size(0), x.size(2), x.size(3), g));
  }
};

/// With probability p, sets a window of random area (a fraction uniform in `scale`) and aspect
/// (log-uniform in `ratio`) to `value`, one number or one per channel (torchvision's
/// RandomErasing with a numeric value; after normalize, as there).
struct random_erasing {
  static constexpr std::string_view name = "random_erasing";
  double p = 0.5;
  std::vector<double> scale{0.02, 0.33};
  std::vector<double> ratio{0.3, 3.3};
  std::vector<double> value{0.0};
  template <class F>
  void each_option(F&& f) { f("p", p); f("scale", scale); f("ratio", ratio); f("value", value); }
  void validate() const {
    detail::check_in_range("kiln::random_erasing", "p", p, 0.0, 1.0);
    detail::check_range("kiln::random_erasing", "scale", scale, 0.0, 1.0);
    detail::check_range("kiln::random_erasing", "ratio", ratio, 1e-12, 1e12);
    detail::check_option(!value.empty(), "kiln::random_erasing", "value", "one number or one per channel", "[]");
  }
  struct parameters { torch::Tensor top, left, heights, widths, erase; };  ///< int64 [N]; erase bool [N]
  KILN_DECL parameters draw(std::int64_t n, std::int64_t height, std::int64_t width, at::Generator& g) const;
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return image::erase(x, q.top, q.left, q.heights, q.widths, value, q.erase);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    image::check_images("kiln::random_erasing", x);
    if (value.size() != 1 && static_cast<std::int64_t>(value.size()) != x.size(1)) {
      throw std::invalid_argument(detail::concat("kiln::random_erasing: value has ", value.size(),
                                                 " numbers but the images have ", x.size(1), " channels"));
    }
    return apply(x, draw(x.size(0), x.size(2), x.size(3), g));
  }
};

/// Blurs each image with a Gaussian kernel of `kernel_size` {width, height} (odd) and a standard
/// deviation uniform in `sigma` {min, max} (torchvision's GaussianBlur).
struct gaussian_blur {
  static constexpr std::string_view name = "gaussian_blur";
  std::vector<std::int64_t> kernel_size{3, 3};
  std::vector<double> sigma{0.1, 2.0};
  template <class F>
  void each_option(F&& f) { f("kernel_size", kernel_size); f("sigma", sigma); }
  void validate() const {
    detail::check_option(kernel_size.size() == 2 && kernel_size[0] > 0 && kernel_size[1] > 0 &&
                             kernel_size[0] % 2 == 1 && kernel_size[1] % 2 == 1,
                         "kiln::gaussian_blur", "kernel_size", "two odd numbers > 0 {width, height}",
                         kernel_size.size());
    detail::check_range("kiln::gaussian_blur", "sigma", sigma, 1e-12, 1e12);
  }
  struct parameters { torch::Tensor sigma; };  ///< double [N]
  parameters draw(std::int64_t n, std::int64_t, std::int64_t, at::Generator& g) const {
    return {detail::uniform(n, sigma[0], sigma[1], g)};
  }
  torch::Tensor apply(const torch::Tensor& x, const parameters& q) const {
    return image::gaussian_blur(x, kernel_size[0], kernel_size[1], q.sigma);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator& g) const {
    image::check_images("kiln::gaussian_blur", x);
    if (kernel_size[0] / 2 >= x.size(3) || kernel_size[1] / 2 >= x.size(2)) {
      throw std::invalid_argument(detail::concat("kiln::gaussian_blur: the kernel ", kernel_size[0], " x ",
                                                 kernel_size[1], " is too large for images ", x.sizes(),
                                                 " (reflection needs half the kernel to be smaller than the image)"));
    }
    return apply(x, draw(x.size(0), x.size(2), x.size(3), g));
  }
};

/// Resamples every image to `size` {height, width} (torchvision's Resize with both sides given,
/// without antialiasing).
struct resize {
  static constexpr std::string_view name = "resize";
  std::vector<std::int64_t> size{};
  kiln::interpolation interpolation = kiln::interpolation::bilinear;
  template <class F>
  void each_option(F&& f) { f("size", size); f("interpolation", interpolation); }
  void validate() const { detail::check_size("kiln::resize", size); }
  torch::Tensor operator()(const torch::Tensor& x) const {
    image::check_images("kiln::resize", x);
    return image::resize(x, size[0], size[1], interpolation);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator&) const { return (*this)(x); }
};

/// The central window of `size` {height, width} of every image (torchvision's CenterCrop).
struct center_crop {
  static constexpr std::string_view name = "center_crop";
  std::vector<std::int64_t> size{};
  template <class F>
  void each_option(F&& f) { f("size", size); }
  void validate() const { detail::check_size("kiln::center_crop", size); }
  torch::Tensor operator()(const torch::Tensor& x) const {
    image::check_images("kiln::center_crop", x);
    return image::center_crop(x, size[0], size[1]);
  }
  torch::Tensor operator()(const torch::Tensor& x, at::Generator&) const { return (*this)(x); }
};

/// (image − mean) / std per channel (torchvision's Normalize).
struct normalize {
  static constexpr std::string_view name = "normalize";
  std::vector<double> mean{};
  std::vector<double> std{};
  template <class F>
  void each_option(F&& f) { f("mean", mean); f("std", std); }
  KILN_DECL void validate() const;
  KILN_DECL torch::Tensor operator()(const torch::Tensor& x) const;
  torch::Tensor operator()(const torch::Tensor& x, at::Generator&) const { return (*this)(x); }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void check_range(std::string_view transform, std::string_view name, const std::vector<double>& range,
                           double low, double high) {
  const bool ok = range.size() == 2 && std::isfinite(range[0]) && std::isfinite(range[1]) && range[0] <= range[1] &&
                  range[0] >= low && range[1] <= high;
  if (!ok) {
    std::string given = "{";
    for (const double v : range) given += concat(given.size() > 1 ? ", " : "", v);
    throw std::invalid_argument(concat(transform, ": ", name, " must be {min, max} with ", low, " <= min <= max <= ",
                                       high, ", got ", given, "}"));
  }
}

KILN_DECL void check_size(std::string_view transform, const std::vector<std::int64_t>& size) {
  if (size.size() != 2 || size[0] <= 0 || size[1] <= 0) {
    std::string given = "{";
    for (const auto v : size) given += concat(given.size() > 1 ? ", " : "", v);
    throw std::invalid_argument(
        concat(transform, ": size must be {height, width}, both > 0, got ", given, "}"));
  }
}

KILN_DECL void check_fits(std::string_view transform, const torch::Tensor& x, std::int64_t height, std::int64_t width) {
  if (height > x.size(2) || width > x.size(3)) {
    throw std::invalid_argument(concat(transform, ": a window of ", height, " x ", width,
                                       " does not fit in images of ", x.size(2), " x ", x.size(3), " (batch ",
                                       x.sizes(), "); use a smaller size or more padding"));
  }
}

KILN_DECL window_tries try_windows(std::int64_t n, std::int64_t height, std::int64_t width,
                                   const std::vector<double>& scale, const std::vector<double>& ratio, bool erasing,
                                   at::Generator& generator) {
  constexpr std::int64_t tries = 10;
  const auto options = torch::TensorOptions(generator.device()).dtype(torch::kDouble);
  const double area = static_cast<double>(height * width);
  const auto target_area = torch::rand({n, tries}, generator, options).mul_(scale[1] - scale[0]).add_(scale[0]).mul_(area);
  const double low = std::log(ratio[0]), high = std::log(ratio[1]);
  const auto aspect = torch::rand({n, tries}, generator, options).mul_(high - low).add_(low).exp_();
  // Python's round(): halves to even, as torch.round.
  auto along_width = torch::round(torch::sqrt(target_area * aspect)).to(torch::kLong);
  auto along_height = torch::round(torch::sqrt(target_area / aspect)).to(torch::kLong);
  torch::Tensor h, w, valid;
  if (erasing) {  // RandomErasing: h from area × aspect; strictly inside
    h = along_width;
    w = along_height;
    valid = (h < height) & (w < width);
  } else {        // RandomResizedCrop: w from area × aspect; 0 < w <= width, 0 < h <= height
    w = along_width;
    h = along_height;
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height);
  }
  const auto first = valid.to(torch::kByte).argmax(1, /*keepdim=*/true);  // the first valid try (0 if none)
  return {h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1), valid.any(1)};
}

}  // namespace kiln::detail

namespace kiln {

KILN_DECL random_resized_crop::parameters random_resized_crop::draw(std::int64_t n, std::int64_t height,
                                                                    std::int64_t width, at::Generator& g) const {
  auto [heights, widths, found] = detail::try_windows(n, height, width, scale, ratio, /*erasing=*/false, g);
  // The fallback, the same for every image: the largest central window within the ratios.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  std::int64_t fallback_w = width, fallback_h = height;
  if (in_ratio < ratio[0]) {
    fallback_h = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(width) / ratio[0]));
  } else if (in_ratio > ratio[1]) {
    fallback_w = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(height) * ratio[1]));
  }
  heights = torch::where(found, heights, fallback_h);
  widths = torch::where(found, widths, fallback_w);
  auto top = detail::integers_up_to(height - heights, g);
  auto left = detail::integers_up_to(width - widths, g);
  top = torch::where(found, top, (height - fallback_h) / 2);
  left = torch::where(found, left, (width - fallback_w) / 2);
  return {top, left, heights, widths};
}

KILN_DECL void random_affine::validate() const {
  constexpr std::string_view where = "kiln::random_affine";
  detail::check_range(where, "degrees", degrees, -360.0, 360.0);
  if (!translate.empty()) {
    detail::check_option(translate.size() == 2 && translate[0] >= 0 && translate[0] <= 1 && translate[1] >= 0 &&
                             translate[1] <= 1,
                         where, "translate", "empty or {fraction of the width, of the height}, each in [0, 1]",
                         translate.size() == 2 ? detail::concat(translate[0], ", ", translate[1]) : "another size");
  }
  if (!scale.empty()) detail::check_range(where, "scale", scale, 1e-12, 1e12);
  if (shear.size() == 4) {
    detail::check_range(where, "shear (x)", {shear[0], shear[1]}, -89.0, 89.0);
    detail::check_range(where, "shear (y)", {shear[2], shear[3]}, -89.0, 89.0);
  } else if (!shear.empty()) {
    detail::check_range(where, "shear", shear, -89.0, 89.0);
  }
}

KILN_DECL random_affine::parameters random_affine::draw(std::int64_t n, std::int64_t height, std::int64_t width,
                                                        at::Generator& g) const {
  const auto zeros = torch::zeros({n}, torch::TensorOptions(g.device()).dtype(torch::kDouble));
  parameters q{detail::uniform(n, degrees[0], degrees[1], g), zeros, zeros, zeros + 1.0, zeros, zeros};
  if (!translate.empty()) {
    const double max_dx = translate[0] * static_cast<double>(width), max_dy = translate[1] * static_cast<double>(height);
    q.tx = detail::uniform(n, -max_dx, max_dx, g).round_();  // whole pixels, halves to even as round()
    q.ty = detail::uniform(n, -max_dy, max_dy, g).round_();
  }
  if (!scale.empty()) q.scale = detail::uniform(n, scale[0], scale[1], g);
  if (!shear.empty()) {
    q.shear_x = detail::uniform(n, shear[0], shear[1], g);
    if (shear.size() == 4) q.shear_y = detail::uniform(n, shear[2], shear[3], g);
  }
  return q;
}

KILN_DECL color_jitter::parameters color_jitter::draw(std::int64_t n, std::int64_t, std::int64_t,
                                                      at::Generator& g) const {
  const auto options = torch::TensorOptions(g.device()).dtype(torch::kDouble);
  // The order: the ranks of three uniform numbers, a uniform permutation.
  const auto order = torch::rand({n, 3}, g, options).argsort(/*dim=*/1, /*descending=*/false);
  const auto u = torch::rand({n, 3}, g, options);
  const auto low = torch::tensor({std::max(0.0, 1.0 - brightness), std::max(0.0, 1.0 - contrast),
                                  std::max(0.0, 1.0 - saturation)}, options);
  const auto high = torch::tensor({1.0 + brightness, 1.0 + contrast, 1.0 + saturation}, options);
  return {low + u * (high - low), order};
}

KILN_DECL torch::Tensor color_jitter::apply(const torch::Tensor& x, const parameters& q) const {
  const auto n = x.size(0);
  const auto enabled = torch::tensor({brightness > 0, contrast > 0, saturation > 0},
                                     torch::TensorOptions(x.device()).dtype(torch::kBool));
  const bool colour = x.size(1) == 3;
  torch::Tensor out = x;
  for (std::int64_t round = 0; round < 3; ++round) {  // in round r, each image applies its r-th operation
    const auto op = q.order.select(1, round);                                  // [N]
    const auto factor = q.factors.gather(1, op.unsqueeze(1)).squeeze(1).to(x.scalar_type()).view({n, 1, 1, 1});
    const auto gray = image::grayscale(out);
    const auto mean = gray.mean({-3, -2, -1}, /*keepdim=*/true);
    const auto o = op.view({n, 1, 1, 1});
    // The reference each operation blends with: black, the mean luminance, the luminance (a
    // one-channel image keeps its saturation: its own value).
    const auto reference = torch::where(o == 0, torch::zeros({}, x.options()),
                                        torch::where(o == 1, mean, colour ? gray : out));
    const auto blended = (factor * out + (1.0 - factor) * reference).clamp_(0.0, 1.0);
    const auto active = enabled.index_select(0, op).view({n, 1, 1, 1}) & (colour ? o >= 0 : o != 2);
    out = torch::where(active, blended, out);
  }
  return out;
}

KILN_DECL random_erasing::parameters random_erasing::draw(std::int64_t n, std::int64_t height, std::int64_t width,
                                                          at::Generator& g) const {
  const auto erase = detail::bernoulli(n, p, g);
  auto [heights, widths, found] = detail::try_windows(n, height, width, scale, ratio, /*erasing=*/true, g);
  heights = heights.clamp(0, height);
  widths = widths.clamp(0, width);
  const auto top = detail::integers_up_to(height - heights, g);
  const auto left = detail::integers_up_to(width - widths, g);
  return {top, left, heights, widths, erase & found};
}

KILN_DECL void normalize::validate() const {
  detail::check_option(!mean.empty() && mean.size() == std.size(), "kiln::normalize", "mean and std",
                       "one value each, or one per channel each", detail::concat(mean.size(), " and ", std.size()));
  for (const double s : std) detail::check_positive("kiln::normalize", "std", s);
}

KILN_DECL torch::Tensor normalize::operator()(const torch::Tensor& x) const {
  image::check_images("kiln::normalize", x);
  if (mean.size() != 1 && static_cast<std::int64_t>(mean.size()) != x.size(1)) {
    throw std::invalid_argument(detail::concat("kiln::normalize: mean and std have ", mean.size(),
                                               " values but the images have ", x.size(1), " channels ", x.sizes()));
  }
  return image::normalize(x, mean, std);
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
