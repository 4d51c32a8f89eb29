// kiln/augment/tta.hpp — test-time augmentation: predictions on the plain images and on fixed
// variants of them, merged by an explicit rule.
//
//   auto p = t.predict(test, kiln::tta<kiln::mean_probabilities, kiln::hflip, kiln::vflip>{});
//   auto q = t.predict(test, kiln::tta<kiln::mean_probabilities, kiln::hflip>{.beta = 0.25});
//   auto s = t.predict(test, kiln::dense_tta<kiln::mean_logits, kiln::hflip,
//                                            kiln::chain<kiln::vflip, kiln::rot90<1>>>{});
//
// The variants: kiln::hflip, kiln::vflip, kiln::rot90<K> (K quarter turns counterclockwise),
// kiln::chain<A, B, ...> (A first), or any type with `torch::Tensor operator()(const
// torch::Tensor&) const` (kiln::center_crop{...}, kiln::resize{...}). One pass runs on the plain
// batch and one per variant. The rules, over probabilities (softmax over dim 1 of class scores,
// sigmoid of binary logits):
//
//   kiln::mean_probabilities   the mean of the passes' probabilities
//   kiln::max_probabilities    their elementwise maximum
//   kiln::geometric_mean       their geometric mean, normalised (for class scores, the softmax
//                              of the mean log-probabilities; for binary logits, the sigmoid of
//                              the mean logit)
//   kiln::mean_logits          the mean of the raw outputs (the only rule for values)
//
// Without `beta`, every pass counts the same. With `beta` (fastai's blend), the variants are
// merged first, and the result is variants + beta × (plain − variants), in the rule's terms
// (probabilities; log-probabilities for geometric_mean; outputs for mean_logits).
//
// The result is in the model's terms, so that it goes wherever the model's outputs go (a
// submission, a metric, a kiln::ensemble): logits for mean_logits; for the probability rules,
// log-probabilities of class scores (softmax of them gives the merged probabilities; for
// max_probabilities, normalised), or the logit of the merged binary probability.
//
// Dense outputs (a map per pixel, [N, C, H, W] for images [N, C', H, W]): with kiln::dense_tta
// each variant's output is taken back through the inverse of each of its transforms, in reverse
// order, before the merge. Every variant of a dense_tta must have an inverse (`invert`): flips and
// quarter turns do, crops and resizes do not, and naming one is a compile error.
#pragma once

#include <kiln/augment/augment.hpp>
#include <kiln/augment/image.hpp>
#include <kiln/loss/loss.hpp>

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

namespace kiln {

/// Mirrors every image left to right; its own inverse.
struct hflip {
  torch::Tensor operator()(const torch::Tensor& x) const { return image::hflip(x); }
  torch::Tensor invert(const torch::Tensor& y) const { return image::hflip(y); }
};

/// Mirrors every image top to bottom; its own inverse.
struct vflip {
  torch::Tensor operator()(const torch::Tensor& x) const { return image::vflip(x); }
  torch::Tensor invert(const torch::Tensor& y) const { return image::vflip(y); }
};

/// K quarter turns counterclockwise; the inverse turns back. An image of H × W becomes W × H for
/// odd K.
template <int K>
struct rot90 {
  torch::Tensor operator()(const torch::Tensor& x) const { return image::rot90(x, K); }
  torch::Tensor invert(const torch::Tensor& y) const { return image::rot90(y, -K); }
};

/// One affine map for every image (torchvision's affine with these arguments): a small fixed
/// rotation or shift, for images that must not be flipped (digits, text). It has no inverse
/// (what it moves out of the image is lost).
///   kiln::tta<kiln::mean_probabilities, kiln::affine, kiln::affine>{
///       .variants = {kiln::affine{.degrees = 8}, kiln::affine{.degrees = -8}}}
struct affine {
  double degrees = 0.0;                  ///< counterclockwise
  std::vector<double> translate{0, 0};   ///< pixels {x, y}
  double scale = 1.0;
  kiln::interpolation interpolation = kiln::interpolation::bilinear;
  double fill = 0.0;
  torch::Tensor operator()(const torch::Tensor& x) const {
    image::check_images("kiln::affine", x);
    const auto n = x.size(0);
    const auto options = torch::TensorOptions(x.device()).dtype(torch::kDouble);
    const auto zero = torch::zeros({n}, options);
    return image::affine(x, zero + degrees, zero + translate.at(0), zero + translate.at(1), zero + scale, zero, zero,
                         interpolation, fill);
  }
};

/// A variant with an inverse, for dense outputs.
template <class T>
concept InvertibleVariant = requires(const T& t, const torch::Tensor& x) {
  { t(x) } -> std::convertible_to<torch::Tensor>;
  { t.invert(x) } -> std::convertible_to<torch::Tensor>;
};

/// A variant: `operator()(images)`.
template <class T>
concept Variant = requires(const T& t, const torch::Tensor& x) {
  { t(x) } -> std::convertible_to<torch::Tensor>;
};

/// The transforms one after another, the first first; inverted in reverse order when each has
/// an inverse.
template <Variant... Ts>
struct chain {
  std::tuple<Ts...> steps{};
  torch::Tensor operator()(const torch::Tensor& x) const {
    torch::Tensor out = x;
    std::apply([&](const auto&... t) { ((out = t(out)), ...); }, steps);
    return out;
  }
  torch::Tensor invert(const torch::Tensor& y) const
    requires(InvertibleVariant<Ts> && ...)
  {
    torch::Tensor out = y;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((out = std::get<sizeof...(Ts) - 1 - I>(steps).invert(out)), ...);
    }(std::index_sequence_for<Ts...>{});
    return out;
  }
};

/// The merge rules (see the file comment).
struct mean_probabilities {};
struct max_probabilities {};
struct geometric_mean {};
struct mean_logits {};

template <class R>
concept MergeRule = std::same_as<R, mean_probabilities> || std::same_as<R, max_probabilities> ||
                    std::same_as<R, geometric_mean> || std::same_as<R, mean_logits>;

namespace detail {

/// The passes merged by `Rule`, in the model's terms (see kiln/augment/tta.hpp).
template <class Rule>
torch::Tensor merge_passes(const torch::Tensor& plain, const std::vector<torch::Tensor>& variants,
                           std::optional<double> beta, output_kind kind);

KILN_DECL torch::Tensor from_probabilities(const torch::Tensor& probabilities, output_kind kind);
KILN_DECL void check_beta(std::optional<double> beta);

}  // namespace detail

/// Test-time augmentation: the plain pass and one per variant, merged by Rule; `beta` blends
/// toward the plain pass (fastai's, 0.25 there). Use it as kiln::tta (per-sample outputs, [N, C]
/// or [N]) or kiln::dense_tta (outputs per pixel, each variant's taken back through its inverse).
template <bool Dense, MergeRule Rule, Variant... Variants>
struct basic_tta {
  static_assert(sizeof...(Variants) >= 1, "kiln::tta: name at least one variant (kiln::hflip, kiln::vflip, ...).");
  static_assert(!Dense || (InvertibleVariant<Variants> && ...),
                "kiln::dense_tta: every variant needs an inverse (`invert`) to take its outputs back to the "
                "image's pixels: kiln::hflip, kiln::vflip, kiln::rot90<K> and kiln::chain of them have one; "
                "crops, resizes and kiln::affine do not.");
  static constexpr bool dense = Dense;
  std::optional<double> beta{};
  std::tuple<Variants...> variants{};

  /// The merged outputs of one batch: `forward(images)` gives a pass's outputs.
  template <output_kind Kind, class Forward>
  torch::Tensor run(Forward&& forward, const torch::Tensor& x) const {
    static_assert(Kind != output_kind::values || std::same_as<Rule, mean_logits>,
                  "kiln::tta: a model of values (a regression loss) has no probabilities; merge with kiln::mean_logits.");
    detail::check_beta(beta);
    std::vector<torch::Tensor> outputs;
    outputs.reserve(sizeof...(Variants));
    std::apply([&](const auto&... v) {
      if constexpr (Dense) {
        (outputs.push_back(v.invert(forward(v(x)))), ...);
      } else {
        (outputs.push_back(forward(v(x))), ...);
      }
    }, variants);
    return detail::merge_passes<Rule>(forward(x), outputs, beta, Kind);
  }
};

/// Test-time augmentation of per-sample outputs ([N, C] or [N]).
template <MergeRule Rule, Variant... Variants>
using tta = basic_tta<false, Rule, Variants...>;

/// Test-time augmentation of dense outputs ([N, C, H, W], one value per pixel): each variant's
/// outputs taken back through its inverses, last first, before the merge.
template <MergeRule Rule, Variant... Variants>
using dense_tta = basic_tta<true, Rule, Variants...>;

namespace detail {

template <class Rule>
torch::Tensor merge_passes(const torch::Tensor& plain, const std::vector<torch::Tensor>& variants,
                           std::optional<double> beta, output_kind kind) {
  for (const auto& v : variants) {
    if (v.sizes() != plain.sizes()) {
      throw std::invalid_argument(concat("kiln::tta: a variant's outputs are ", v.sizes(), " but the plain pass's are ",
                                         plain.sizes(), "; a dense model needs kiln::dense_tta, which inverts them"));
    }
  }
  // The passes in the rule's terms, and the merge of some of them.
  auto terms = [&](const torch::Tensor& o) {
    if constexpr (std::same_as<Rule, mean_logits>) {
      return o;
    } else if constexpr (std::same_as<Rule, geometric_mean>) {
      return kind == output_kind::class_scores ? torch::log_softmax(o, 1) : o;  // merged as logits
    } else {
      return probabilities(o, kind, /*class_dim=*/1);
    }
  };
  auto merge = [&](const std::vector<torch::Tensor>& parts) {
    const auto stacked = torch::stack(parts);
    if constexpr (std::same_as<Rule, max_probabilities>) {
      return std::get<0>(stacked.max(0));
    } else {
      return stacked.mean(0);
    }
  };
  std::vector<torch::Tensor> parts;
  parts.reserve(variants.size() + 1);
  if (!beta) parts.push_back(terms(plain));
  for (const auto& v : variants) parts.push_back(terms(v));
  torch::Tensor merged = merge(parts);
  if (beta) merged = merged + *beta * (terms(plain) - merged);
  if constexpr (std::same_as<Rule, mean_logits>) {
    return merged;
  } else if constexpr (std::same_as<Rule, geometric_mean>) {
    // mean log-probabilities (or logits): the softmax (sigmoid) of it is the normalised
    // geometric mean; as log-probabilities, normalised.
    return kind == output_kind::class_scores ? torch::log_softmax(merged, 1) : merged;
  } else {
    return from_probabilities(merged, kind);
  }
}

}  // namespace detail
}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL torch::Tensor from_probabilities(const torch::Tensor& probabilities, output_kind kind) {
  if (kind == output_kind::class_scores) return probabilities.log();
  return probabilities.log() - (-probabilities).log1p();  // the logit
}

KILN_DECL void check_beta(std::optional<double> beta) {
  if (beta) check_in_range("kiln::tta", "beta", *beta, 0.0, 1.0);
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
