// kiln/augment/mix.hpp — the batch-level mixes of a kiln::augment<...>: MixUp and CutMix, as
// torchvision's classification references apply them. Each pairs every image with the one
// before it in the batch (the batch rolled by one), and with probability p mixes the pair by a
// weight λ drawn from Beta(alpha, alpha) for the whole batch:
//
//   kiln::mixup{.classes, .alpha = 1, .p = 0.5}    image = λ · image + (1 − λ) · partner
//   kiln::cutmix{.classes, .alpha = 1, .p = 0.5}   a box of the partner pasted in: center uniform
//                                                  over the image, sides √(1 − λ) × the image's
//                                                  (clipped at its edges); λ becomes the area kept
//
// and the targets become class probabilities [N, classes] mixed by the same λ: one-hot class
// indices, or probabilities as they come. kiln::cross_entropy takes them as torch.nn's does (with
// label smoothing too); a pipeline whose loss does not read class probabilities cannot mix (a
// compile error). A batch that is not mixed still has its targets as probabilities: the loss of
// one-hot probabilities equals that of the indices (with class weights the mean differs: PyTorch
// divides by the weights' sum for indices, by N for probabilities).
//
// Nothing is read back to the host: whether the batch mixes and the box are tensors on the device.
#pragma once

#include <kiln/augment/image.hpp>
#include <kiln/detail/check.hpp>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <string_view>

namespace kiln {
namespace detail {

/// The targets as class probabilities [N, classes] of the images' type: one-hot indices, or
/// float probabilities with `classes` columns.
KILN_DECL torch::Tensor class_probabilities(std::string_view mix, const torch::Tensor& target, std::int64_t classes,
                                            torch::ScalarType type);

/// λ ~ Beta(alpha, alpha) (a double scalar) and whether the batch mixes (a bool scalar), drawn
/// on the generator's device.
KILN_DECL std::pair<torch::Tensor, torch::Tensor> draw_mix(double alpha, double p, at::Generator& g);

KILN_DECL void validate_mix(std::string_view mix, std::int64_t classes, double alpha, double p);

}  // namespace detail

/// MixUp: every image blended with its neighbour in the batch, the targets likewise.
struct mixup {
  static constexpr std::string_view name = "mixup";
  static constexpr bool mixes_targets = true;
  std::int64_t classes = 0;  ///< the number of classes (required): the width of the mixed targets
  double alpha = 1.0;
  double p = 0.5;
  template <class F>
  void each_option(F&& f) { f("classes", classes); f("alpha", alpha); f("p", p); }
  void validate() const { detail::validate_mix("kiln::mixup", classes, alpha, p); }
  /// λ (double scalar, 1 when the batch is not mixed).
  struct parameters { torch::Tensor lambda; };
  parameters draw(at::Generator& g) const {
    auto [lambda, mixes] = detail::draw_mix(alpha, p, g);
    return {torch::where(mixes, lambda, torch::ones_like(lambda))};
  }
  KILN_DECL void apply(torch::Tensor& x, torch::Tensor& y, const parameters& q) const;
  void operator()(torch::Tensor& x, torch::Tensor& y, at::Generator& g) const {
    image::check_images("kiln::mixup", x);
    apply(x, y, draw(g));
  }
};

/// CutMix: a box of its neighbour pasted into every image, the targets mixed by the area kept.
struct cutmix {
  static constexpr std::string_view name = "cutmix";
  static constexpr bool mixes_targets = true;
  std::int64_t classes = 0;  ///< the number of classes (required)
  double alpha = 1.0;
  double p = 0.5;
  template <class F>
  void each_option(F&& f) { f("classes", classes); f("alpha", alpha); f("p", p); }
  void validate() const { detail::validate_mix("kiln::cutmix", classes, alpha, p); }
  /// The box, rows [y1, y2) and columns [x1, x2) (int64 scalars; empty when the batch is not mixed).
  struct parameters { torch::Tensor y1, y2, x1, x2; };
  KILN_DECL parameters draw(std::int64_t height, std::int64_t width, at::Generator& g) const;
  KILN_DECL void apply(torch::Tensor& x, torch::Tensor& y, const parameters& q) const;
  void operator()(torch::Tensor& x, torch::Tensor& y, at::Generator& g) const {
    image::check_images("kiln::cutmix", x);
    apply(x, y, draw(x.size(2), x.size(3), g));
  }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

#include <cmath>

namespace kiln::detail {

KILN_DECL torch::Tensor class_probabilities(std::string_view mix, const torch::Tensor& target, std::int64_t classes,
                                            torch::ScalarType type) {
  if (target.is_floating_point()) {
    if (target.dim() != 2 || target.size(1) != classes) {
      throw std::invalid_argument(concat(mix, ": float targets must be class probabilities [N, ", classes,
                                         "] (classes = ", classes, "), got ", target.sizes()));
    }
    return target.to(type);
  }
  if (target.dim() != 1) {
    throw std::invalid_argument(concat(mix, ": class-index targets must be [N], got ", target.sizes(),
                                       "; dense targets cannot be mixed"));
  }
  return torch::one_hot(target, classes).to(type);  // an index outside [0, classes) is LibTorch's error
}

KILN_DECL std::pair<torch::Tensor, torch::Tensor> draw_mix(double alpha, double p, at::Generator& g) {
  const auto options = torch::TensorOptions(g.device()).dtype(torch::kDouble);
  const auto mixes = torch::rand({}, g, options) < p;
  // Beta(a, a) as the first of a Dirichlet(a, a) pair, as torchvision's references draw it.
  const auto lambda = torch::_sample_dirichlet(torch::full({2}, alpha, options), g).select(0, 0);
  return {lambda, mixes};
}

KILN_DECL void validate_mix(std::string_view mix, std::int64_t classes, double alpha, double p) {
  check_option(classes >= 2, mix, "classes", "the number of classes (at least 2), for the mixed targets", classes);
  check_positive(mix, "alpha", alpha);
  check_in_range(mix, "p", p, 0.0, 1.0);
}

}  // namespace kiln::detail

namespace kiln {

KILN_DECL void mixup::apply(torch::Tensor& x, torch::Tensor& y, const parameters& q) const {
  const auto lambda = q.lambda.to(x.scalar_type());
  auto targets = detail::class_probabilities("kiln::mixup", y, classes, x.scalar_type());
  x = x * lambda + x.roll(1, 0) * (1.0 - lambda);
  y = targets * lambda + targets.roll(1, 0) * (1.0 - lambda);
}

KILN_DECL cutmix::parameters cutmix::draw(std::int64_t height, std::int64_t width, at::Generator& g) const {
  auto [lambda, mixes] = detail::draw_mix(alpha, p, g);
  const auto options = torch::TensorOptions(g.device()).dtype(torch::kLong);
  const auto center_x = torch::randint(width, {}, g, options), center_y = torch::randint(height, {}, g, options);
  const auto r = (1.0 - lambda).sqrt() * 0.5;
  const auto half_w = (r * static_cast<double>(width)).to(torch::kLong);   // int(): toward zero
  const auto half_h = (r * static_cast<double>(height)).to(torch::kLong);
  auto x1 = (center_x - half_w).clamp_min(0), x2 = (center_x + half_w).clamp_max(width);
  auto y1 = (center_y - half_h).clamp_min(0), y2 = (center_y + half_h).clamp_max(height);
  // An unmixed batch: an empty box.
  x2 = torch::where(mixes, x2, x1);
  return {y1, y2, x1, x2};
}

KILN_DECL void cutmix::apply(torch::Tensor& x, torch::Tensor& y, const parameters& q) const {
  const auto height = x.size(2), width = x.size(3);
  const auto index_options = torch::TensorOptions(x.device()).dtype(torch::kLong);
  const auto rows = torch::arange(height, index_options).view({height, 1});
  const auto cols = torch::arange(width, index_options).view({1, width});
  const auto box = (rows >= q.y1) & (rows < q.y2) & (cols >= q.x1) & (cols < q.x2);  // [H, W]
  const auto lambda = (1.0 - ((q.x2 - q.x1) * (q.y2 - q.y1)).to(torch::kDouble) /
                                 static_cast<double>(height * width)).to(x.scalar_type());
  auto targets = detail::class_probabilities("kiln::cutmix", y, classes, x.scalar_type());
  x = torch::where(box, x.roll(1, 0), x);
  y = targets * lambda + targets.roll(1, 0) * (1.0 - lambda);
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
