// kiln/augment/image.hpp — operations on whole batches of images [N, C, H, W], on the device the
// batch is on, each equal to its counterpart in torchvision.transforms.functional (0.14) for the
// same parameters (tests/augment/ checks them against torchvision within 1e-5).
//
// Where a transform draws parameters per sample, the operation takes them as tensors of N values
// (int64 for pixel positions, double for factors and angles) on the batch's device, so a batch is
// transformed without a loop over its samples and without reading anything back to the host.
//
//   kiln::image::hflip(x), vflip(x), rot90(x, k)       torchvision: hflip, vflip; torch.rot90
//   kiln::image::pad(x, left, top, right, bottom, mode, fill)              pad
//   kiln::image::crop(x, top, left, height, width)                         crop (each sample's own
//                                                                          offsets: crop_each)
//   kiln::image::resize(x, height, width, interpolation)                   resize (antialias off)
//   kiln::image::resized_crop_each(x, top, left, heights, widths, h, w)    resized_crop, bilinear
//   kiln::image::center_crop(x, height, width)                             center_crop
//   kiln::image::affine(x, angle, tx, ty, scale, shear_x, shear_y, interpolation, fill)
//                                                                          affine, rotate (center
//                                                                          of the image, expand off)
//   kiln::image::adjust_brightness / adjust_contrast / adjust_saturation(x, factor)
//   kiln::image::normalize(x, mean, std), erase(x, top, left, h, w, value, apply),
//   kiln::image::gaussian_blur(x, kernel_width, kernel_height, sigma)
//
// Conventions that are torchvision's: positions are integers, (top, left) from the image's top
// left corner; pixel values of the colour operations are in [0, 1] (they clamp to it, as
// torchvision's do for float images); an affine transform samples with the inverse matrix about
// the image's center and fills what falls outside with `fill` (torchvision's RandomAffine and
// RandomRotation pass their fill, 0 by default, which blends the border with it).
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

/// How an image is padded: with a constant, by repeating its edge, or by reflecting it about its
/// edge without repeating it (torchvision's "constant", "edge", "reflect").
enum class padding_mode { constant, edge, reflect };
constexpr std::array<std::pair<std::string_view, padding_mode>, 3> enum_names(padding_mode) noexcept {
  return {{{"constant", padding_mode::constant}, {"edge", padding_mode::edge}, {"reflect", padding_mode::reflect}}};
}

/// How a resampled pixel is computed from its neighbours.
enum class interpolation { nearest, bilinear };
constexpr std::array<std::pair<std::string_view, interpolation>, 2> enum_names(interpolation) noexcept {
  return {{{"nearest", interpolation::nearest}, {"bilinear", interpolation::bilinear}}};
}

}  // namespace kiln

namespace kiln::image {

/// Throws std::invalid_argument naming `transform` and the shape unless `x` is a floating-point
/// batch of images [N, C, H, W] (with C in `channels` when that is not empty).
KILN_DECL void check_images(std::string_view transform, const torch::Tensor& x,
                            std::initializer_list<std::int64_t> channels = {});

/// Mirrors each image left to right (hflip) or top to bottom (vflip).
inline torch::Tensor hflip(const torch::Tensor& x) { return x.flip({-1}); }
inline torch::Tensor vflip(const torch::Tensor& x) { return x.flip({-2}); }
/// Rotates each image by k quarter turns counterclockwise (torch.rot90 over the last two dims).
inline torch::Tensor rot90(const torch::Tensor& x, std::int64_t k) { return torch::rot90(x, k, {-2, -1}); }

/// Pads every image by the given number of pixels on each side.
KILN_DECL torch::Tensor pad(const torch::Tensor& x, std::int64_t left, std::int64_t top, std::int64_t right,
                            std::int64_t bottom, padding_mode mode = padding_mode::constant, double fill = 0.0);

/// The same window of every image: rows [top, top + height), columns [left, left + width).
KILN_DECL torch::Tensor crop(const torch::Tensor& x, std::int64_t top, std::int64_t left, std::int64_t height,
                             std::int64_t width);

/// A window of one size at each image's own position: `top` and `left` are int64 [N], inside
/// the image.
KILN_DECL torch::Tensor crop_each(const torch::Tensor& x, const torch::Tensor& top, const torch::Tensor& left,
                                  std::int64_t height, std::int64_t width);

/// Every image resampled to height × width (torchvision's resize without antialiasing, which
/// is its default for tensors in 0.14).
KILN_DECL torch::Tensor resize(const torch::Tensor& x, std::int64_t height, std::int64_t width,
                               interpolation mode = interpolation::bilinear);

/// Each image's own window (int64 [N] each) resampled bilinearly to height × width: the batched
/// form of torchvision's resized_crop.
KILN_DECL torch::Tensor resized_crop_each(const torch::Tensor& x, const torch::Tensor& top, const torch::Tensor& left,
                                          const torch::Tensor& heights, const torch::Tensor& widths,
                                          std::int64_t height, std::int64_t width);

/// The central height × width window, padded with zeros where it is larger than the image;
/// a half pixel is rounded as Python's round() does (to even).
KILN_DECL torch::Tensor center_crop(const torch::Tensor& x, std::int64_t height, std::int64_t width);

/// Each image transformed by its own affine map about the image's center: rotation by `angle`
/// degrees (counterclockwise), translation by (tx, ty) pixels, scale, shear (degrees); every
/// argument is double [N]. Equal to torchvision's affine(img, angle, [tx, ty], scale,
/// [shear_x, shear_y], interpolation, fill=[fill] * C).
KILN_DECL torch::Tensor affine(const torch::Tensor& x, const torch::Tensor& angle, const torch::Tensor& tx,
                               const torch::Tensor& ty, const torch::Tensor& scale, const torch::Tensor& shear_x,
                               const torch::Tensor& shear_y, interpolation mode, double fill);

/// Each image rotated by its own `angle` (degrees, counterclockwise, double [N]) about its
/// center, the size kept: torchvision's rotate(img, angle, interpolation, fill=[fill] * C).
KILN_DECL torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& angle, interpolation mode, double fill);

/// The luminance of RGB images, [N, 1, H, W]: 0.2989 R + 0.587 G + 0.114 B (torchvision's
/// rgb_to_grayscale); a one-channel image is its own.
KILN_DECL torch::Tensor grayscale(const torch::Tensor& x);

/// factor × image + (1 − factor) × reference, clamped to [0, 1], with each image's own factor
/// (double [N]): brightness blends with black, contrast with the mean of the image's luminance,
/// saturation with its luminance (a one-channel image keeps its saturation).
KILN_DECL torch::Tensor adjust_brightness(const torch::Tensor& x, const torch::Tensor& factor);
KILN_DECL torch::Tensor adjust_contrast(const torch::Tensor& x, const torch::Tensor& factor);
KILN_DECL torch::Tensor adjust_saturation(const torch::Tensor& x, const torch::Tensor& factor);

/// (image − mean) / std per channel; `mean` and `std` have one value, or one per channel.
KILN_DECL torch::Tensor normalize(const torch::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std);

/// Sets each image's window (int64 [N] each) to `value` (one value, or one per channel) where
/// `apply` (bool [N]) is true.
KILN_DECL torch::Tensor erase(const torch::Tensor& x, const torch::Tensor& top, const torch::Tensor& left,
                              const torch::Tensor& heights, const torch::Tensor& widths,
                              const std::vector<double>& value, const torch::Tensor& apply);

/// Each image blurred by a Gaussian kernel of odd size kernel_width × kernel_height and its own
/// standard deviation (double [N], the same along both axes), the edges reflected: torchvision's
/// gaussian_blur(img, [kernel_width, kernel_height], [sigma, sigma]).
KILN_DECL torch::Tensor gaussian_blur(const torch::Tensor& x, std::int64_t kernel_width, std::int64_t kernel_height,
                                      const torch::Tensor& sigma);

}  // namespace kiln::image

#if KILN_FUNCTION_DEFINITIONS

#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/functional/vision.h>

#include <cmath>
#include <numbers>

namespace kiln::image {

KILN_DECL void check_images(std::string_view transform, const torch::Tensor& x,
                            std::initializer_list<std::int64_t> channels) {
  bool ok = x.defined() && x.dim() == 4 && x.is_floating_point() && x.size(2) > 0 && x.size(3) > 0;
  std::string rule = "a floating-point batch of images [N, C, H, W]";
  if (ok && channels.size() > 0) {
    ok = false;
    rule += " with C = ";
    for (const auto c : channels) {
      ok = ok || x.size(1) == c;
      rule += detail::concat(c == *channels.begin() ? "" : " or ", c);
    }
  }
  if (!ok) {
    throw std::invalid_argument(detail::concat(
        transform, ": the batch must be ", rule, ", got ",
        x.defined() ? detail::concat(x.sizes(), ' ', x.scalar_type()) : std::string{"an undefined tensor"},
        x.defined() && x.dim() == 3 ? " (one image [C, H, W]: add the batch dimension with unsqueeze(0))" : ""));
  }
}

KILN_DECL torch::Tensor pad(const torch::Tensor& x, std::int64_t left, std::int64_t top, std::int64_t right,
                            std::int64_t bottom, padding_mode mode, double fill) {
  namespace F = torch::nn::functional;
  auto options = F::PadFuncOptions({left, right, top, bottom});
  switch (mode) {
    case padding_mode::constant: return F::pad(x, options.mode(torch::kConstant).value(fill));
    case padding_mode::edge: return F::pad(x, options.mode(torch::kReplicate));
    case padding_mode::reflect: break;
  }
  return F::pad(x, options.mode(torch::kReflect));
}

KILN_DECL torch::Tensor crop(const torch::Tensor& x, std::int64_t top, std::int64_t left, std::int64_t height,
                             std::int64_t width) {
  using torch::indexing::Slice;
  return x.index({Slice(), Slice(), Slice(top, top + height), Slice(left, left + width)});
}

KILN_DECL torch::Tensor crop_each(const torch::Tensor& x, const torch::Tensor& top, const torch::Tensor& left,
                                  std::int64_t height, std::int64_t width) {
  const auto n = x.size(0), channels = x.size(1), image_width = x.size(3);
  const auto index_options = torch::TensorOptions(x.device()).dtype(torch::kLong);
  const auto rows = top.view({n, 1}) + torch::arange(height, index_options);   // [N, h]
  const auto cols = left.view({n, 1}) + torch::arange(width, index_options);   // [N, w]
  const auto index = (rows.unsqueeze(2) * image_width + cols.unsqueeze(1)).view({n, 1, height * width});
  return x.flatten(2).gather(2, index.expand({n, channels, height * width})).view({n, channels, height, width});
}

KILN_DECL torch::Tensor resize(const torch::Tensor& x, std::int64_t height, std::int64_t width, interpolation mode) {
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().size(std::vector<std::int64_t>{height, width});
  if (mode == interpolation::nearest) return F::interpolate(x, options.mode(torch::kNearest));
  return F::interpolate(x, options.mode(torch::kBilinear).align_corners(false));
}

}  // namespace kiln::image

namespace kiln::detail {

// For each sample's window of `sizes` pixels starting at `starts` (int64 [N]), resampled to `out`
// pixels as upsample_bilinear2d does without align_corners: the two source positions of each
// output pixel, [N, out] int64 in the image, and the weight of the second, [N, out].
KILN_DECL std::pair<std::pair<torch::Tensor, torch::Tensor>, torch::Tensor> linear_taps(const torch::Tensor& starts,
                                                                            const torch::Tensor& sizes,
                                                                            std::int64_t out,
                                                                            torch::ScalarType type) {
  const auto float_options = torch::TensorOptions(starts.device()).dtype(type);
  const auto scale = (sizes.to(type) / static_cast<double>(out)).unsqueeze(1);              // [N, 1]
  const auto position = torch::arange(out, float_options).add_(0.5).unsqueeze(0);          // [1, out]
  const auto source = (scale * position).sub_(0.5).clamp_min_(0.0);                         // [N, out]
  const auto last = (sizes - 1).unsqueeze(1);
  auto first = source.to(torch::kLong).minimum(last);
  auto second = (first + 1).minimum(last);
  auto weight = (source - first.to(type)).clamp_(0.0, 1.0);
  return {{first + starts.unsqueeze(1), second + starts.unsqueeze(1)}, weight};
}

}  // namespace kiln::detail

namespace kiln::image {

KILN_DECL torch::Tensor resized_crop_each(const torch::Tensor& x, const torch::Tensor& top, const torch::Tensor& left,
                                          const torch::Tensor& heights, const torch::Tensor& widths,
                                          std::int64_t height, std::int64_t width) {
  const auto n = x.size(0), channels = x.size(1), image_width = x.size(3);
  const auto [rows, row_weight] = detail::linear_taps(top, heights, height, x.scalar_type());
  const auto [cols, col_weight] = detail::linear_taps(left, widths, width, x.scalar_type());
  const auto flat = x.flatten(2);
  auto at = [&](const torch::Tensor& r, const torch::Tensor& c) {
    const auto index = (r.unsqueeze(2) * image_width + c.unsqueeze(1)).view({n, 1, height * width});
    return flat.gather(2, index.expand({n, channels, height * width})).view({n, channels, height, width});
  };
  const auto wy = row_weight.view({n, 1, height, 1});
  const auto wx = col_weight.view({n, 1, 1, width});
  const auto top_row = at(rows.first, cols.first) * (1 - wx) + at(rows.first, cols.second) * wx;
  const auto bottom_row = at(rows.second, cols.first) * (1 - wx) + at(rows.second, cols.second) * wx;
  return top_row * (1 - wy) + bottom_row * wy;
}

KILN_DECL torch::Tensor center_crop(const torch::Tensor& x, std::int64_t height, std::int64_t width) {
  torch::Tensor image = x;
  auto image_height = x.size(2), image_width = x.size(3);
  if (height > image_height || width > image_width) {
    const auto pad_x = width > image_width ? width - image_width : 0;
    const auto pad_y = height > image_height ? height - image_height : 0;
    image = pad(x, pad_x / 2, pad_y / 2, (pad_x + 1) / 2, (pad_y + 1) / 2);
    image_height = image.size(2);
    image_width = image.size(3);
  }
  const auto top = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(image_height - height) / 2.0));
  const auto left = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(image_width - width) / 2.0));
  return crop(image, top, left, height, width);
}

KILN_DECL torch::Tensor affine(const torch::Tensor& x, const torch::Tensor& angle, const torch::Tensor& tx,
                               const torch::Tensor& ty, const torch::Tensor& scale, const torch::Tensor& shear_x,
                               const torch::Tensor& shear_y, interpolation mode, double fill) {
  const auto n = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  // The inverse of M = T C R S Sh C⁻¹ about the image's center, in double as torchvision
  // computes it: rotation and shears in radians, R S Sh = [[a, b], [c, d]] with det 1 before the
  // scale, inverted as [[d, -b], [-c, a]] / scale, then the translation taken back.
  constexpr double radians = std::numbers::pi / 180.0;
  const auto rot = angle * radians, sx = shear_x * radians, sy = shear_y * radians;
  const auto cos_sy = sy.cos();
  const auto a = (rot - sy).cos() / cos_sy;
  const auto b = -(rot - sy).cos() * sx.tan() / cos_sy - rot.sin();
  const auto c = (rot - sy).sin() / cos_sy;
  const auto d = -(rot - sy).sin() * sx.tan() / cos_sy + rot.cos();
  const auto m0 = d / scale, m1 = -b / scale, m3 = -c / scale, m4 = a / scale;
  const auto m2 = m0 * -tx + m1 * -ty, m5 = m3 * -tx + m4 * -ty;  // the center is (0, 0) here
  // theta [N, 2, 3] in the images' type, then torchvision's grid: pixel centers relative to the
  // image's center times theta, normalised by half the size.
  const auto theta = torch::stack({m0, m1, m2, m3, m4, m5}, 1).view({n, 2, 3}).to(x.scalar_type());
  const auto options = torch::TensorOptions(x.device()).dtype(x.scalar_type());
  auto base = torch::empty({1, height, width, 3}, options);
  base.select(3, 0).copy_(torch::linspace(-width * 0.5 + 0.5, width * 0.5 - 0.5, width, options));
  base.select(3, 1).copy_(torch::linspace(-height * 0.5 + 0.5, height * 0.5 - 0.5, height, options).unsqueeze(-1));
  base.select(3, 2).fill_(1);
  const auto half_size = torch::tensor({0.5 * static_cast<double>(width), 0.5 * static_cast<double>(height)}, options);
  const auto rescaled = theta.transpose(1, 2) / half_size;  // [N, 3, 2]
  const auto grid = base.view({1, height * width, 3}).expand({n, height * width, 3}).bmm(rescaled).view({n, height, width, 2});
  // A channel of ones travels with the images, to blend what falls outside with `fill`.
  const auto with_mask = torch::cat({x, torch::ones({n, 1, height, width}, options)}, 1);
  namespace F = torch::nn::functional;
  auto sample_options = F::GridSampleFuncOptions().padding_mode(torch::kZeros).align_corners(false);
  const auto sampled = F::grid_sample(with_mask, grid, mode == interpolation::nearest
                                                            ? sample_options.mode(torch::kNearest)
                                                            : sample_options.mode(torch::kBilinear));
  const auto images = sampled.narrow(1, 0, channels);
  const auto mask = sampled.narrow(1, channels, 1);
  if (mode == interpolation::nearest) return torch::where(mask < 0.5, torch::full({}, fill, options), images);
  return images * mask + (1.0 - mask) * fill;
}

KILN_DECL torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& angle, interpolation mode, double fill) {
  const auto zero = torch::zeros_like(angle);
  return affine(x, -angle, zero, zero, torch::ones_like(angle), zero, zero, mode, fill);
}

KILN_DECL torch::Tensor grayscale(const torch::Tensor& x) {
  if (x.size(1) == 1) return x;
  const auto channels = x.unbind(1);
  return (0.2989 * channels[0] + 0.587 * channels[1] + 0.114 * channels[2]).unsqueeze(1);
}

}  // namespace kiln::image

namespace kiln::detail {

KILN_DECL torch::Tensor blend(const torch::Tensor& x, const torch::Tensor& reference, const torch::Tensor& factor) {
  const auto f = factor.to(x.scalar_type()).view({-1, 1, 1, 1});
  return (f * x + (1.0 - f) * reference).clamp_(0.0, 1.0);
}

}  // namespace kiln::detail

namespace kiln::image {

KILN_DECL torch::Tensor adjust_brightness(const torch::Tensor& x, const torch::Tensor& factor) {
  return detail::blend(x, torch::zeros({}, x.options()), factor);
}

KILN_DECL torch::Tensor adjust_contrast(const torch::Tensor& x, const torch::Tensor& factor) {
  return detail::blend(x, grayscale(x).mean({-3, -2, -1}, /*keepdim=*/true), factor);
}

KILN_DECL torch::Tensor adjust_saturation(const torch::Tensor& x, const torch::Tensor& factor) {
  if (x.size(1) == 1) return x;
  return detail::blend(x, grayscale(x), factor);
}

}  // namespace kiln::image

namespace kiln::detail {

KILN_DECL torch::Tensor per_channel(const std::vector<double>& values, const torch::Tensor& x) {
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kDouble))
      .to(x.options())
      .view({1, static_cast<std::int64_t>(values.size()), 1, 1});
}

}  // namespace kiln::detail

namespace kiln::image {

KILN_DECL torch::Tensor normalize(const torch::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std) {
  return (x - detail::per_channel(mean, x)) / detail::per_channel(std, x);
}

KILN_DECL torch::Tensor erase(const torch::Tensor& x, const torch::Tensor& top, const torch::Tensor& left,
                              const torch::Tensor& heights, const torch::Tensor& widths,
                              const std::vector<double>& value, const torch::Tensor& apply) {
  const auto n = x.size(0);
  const auto index_options = torch::TensorOptions(x.device()).dtype(torch::kLong);
  const auto rows = torch::arange(x.size(2), index_options).view({1, 1, -1, 1});
  const auto cols = torch::arange(x.size(3), index_options).view({1, 1, 1, -1});
  const auto t = top.view({n, 1, 1, 1}), l = left.view({n, 1, 1, 1});
  const auto inside = (rows >= t) & (rows < t + heights.view({n, 1, 1, 1})) & (cols >= l) &
                      (cols < l + widths.view({n, 1, 1, 1})) & apply.view({n, 1, 1, 1});
  return torch::where(inside, detail::per_channel(value, x), x);
}

KILN_DECL torch::Tensor gaussian_blur(const torch::Tensor& x, std::int64_t kernel_width, std::int64_t kernel_height,
                                      const torch::Tensor& sigma) {
  const auto n = x.size(0), channels = x.size(1);
  // torchvision's kernel: exp(-x² / 2σ²) at the kernel's integer offsets, in float32, normalised.
  auto kernel1d = [&](std::int64_t size) {
    const double half = static_cast<double>(size - 1) * 0.5;
    const auto offsets = torch::linspace(-half, half, size, torch::TensorOptions(x.device()).dtype(torch::kFloat));
    const auto s = sigma.to(torch::kFloat).view({n, 1});
    const auto pdf = torch::exp(-0.5 * (offsets.view({1, size}) / s).pow(2));
    return (pdf / pdf.sum(1, /*keepdim=*/true)).to(x.scalar_type());
  };
  const auto kernel_x = kernel1d(kernel_width), kernel_y = kernel1d(kernel_height);  // [N, k]
  const auto kernel2d = kernel_y.unsqueeze(2) * kernel_x.unsqueeze(1);               // [N, ky, kx]
  const auto weight = kernel2d.unsqueeze(1).repeat_interleave(channels, 0);          // [N·C, 1, ky, kx]
  const auto padded = pad(x, kernel_width / 2, kernel_height / 2, kernel_width / 2, kernel_height / 2,
                          padding_mode::reflect);
  return torch::conv2d(padded.reshape({1, n * channels, padded.size(2), padded.size(3)}), weight, torch::Tensor{},
                       torch::IntArrayRef{1, 1}, torch::IntArrayRef{0, 0}, torch::IntArrayRef{1, 1}, n * channels)
      .view({n, channels, x.size(2), x.size(3)});
}

}  // namespace kiln::image

#endif  // KILN_FUNCTION_DEFINITIONS
