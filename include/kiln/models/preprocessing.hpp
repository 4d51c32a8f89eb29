// kiln/models/preprocessing.hpp — the ImageNet preprocessing each published weight set expects,
// as torchvision's weights.transforms() does it (torchvision.transforms._presets.ImageClassification):
// resize the shorter side to `resize` (bilinear, no antialiasing: 0.14's default for tensors),
// the central crop × crop window, values in [0, 1], normalised by ImageNet's mean and std.
// tests/models/models.cpp checks it against torchvision's on uint8 and float images.
//
//   const auto& weights = kiln::models::published("resnet50-11ad3fa6.pth");   // its preprocessing, accuracy
//   auto batch = weights.preprocessing(images);     // uint8 or float [N, 3, H, W] -> float [N, 3, 224, 224]
#pragma once

#include <kiln/augment/image.hpp>  // resize, center_crop, normalize: torchvision's functional ops
#include <kiln/detail/check.hpp>

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::models {

/// torchvision's ImageClassification preset.
struct imagenet_preprocessing {
  std::int64_t resize = 256;  ///< the shorter side, after resizing
  std::int64_t crop = 224;    ///< the central square kept
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};

  /// uint8 images (0–255) or float ones (0–1), [N, 3, H, W] or [3, H, W].
  [[nodiscard]] torch::Tensor operator()(const torch::Tensor& images) const {
    const bool single = images.dim() == 3;
    const bool bytes = images.scalar_type() == torch::kByte;
    const auto x = (single ? images.unsqueeze(0) : images).to(torch::kFloat);
    image::check_images("kiln::models::imagenet_preprocessing", x, {3});
    const std::int64_t h = x.size(2), w = x.size(3);
    // torchvision: the shorter side becomes `resize`, the longer int(resize * long / short).
    const std::int64_t new_h = h <= w ? resize : static_cast<std::int64_t>(static_cast<double>(resize) * h / w);
    const std::int64_t new_w = h <= w ? static_cast<std::int64_t>(static_cast<double>(resize) * w / h) : resize;
    auto y = image::resize(x, new_h, new_w, interpolation::bilinear);
    if (bytes) y = y.round().clamp(0, 255);  // torchvision resizes uint8 images as uint8
    y = image::center_crop(y, crop, crop);
    if (bytes) y = y.div(255.0);
    y = image::normalize(y, {mean.begin(), mean.end()}, {std.begin(), std.end()});
    return single ? y.squeeze(0) : y;
  }
};

/// A weight file torchvision publishes: its name (with the SHA-256 prefix torch.hub checks), the
/// architecture, its preprocessing and its ImageNet top-1 accuracy as torchvision reports it.
struct published_weights {
  std::string_view file;
  std::string_view architecture;
  imagenet_preprocessing preprocessing;
  double top1;
};

/// torchvision 0.14's weight files for the architectures of kiln::models. Download one from
/// https://download.pytorch.org/models/<file> (torch.hub keeps them in
/// ~/.cache/torch/hub/checkpoints/).
inline constexpr std::array<published_weights, 17> published_files{{
    {"resnet18-f37072fd.pth", "resnet18", {.resize = 256}, 69.758},
    {"resnet34-b627a593.pth", "resnet34", {.resize = 256}, 73.314},
    {"resnet50-0676ba61.pth", "resnet50", {.resize = 256}, 76.130},
    {"resnet50-11ad3fa6.pth", "resnet50", {.resize = 232}, 80.858},
    {"resnet101-63fe2227.pth", "resnet101", {.resize = 256}, 77.374},
    {"resnet101-cd907fc2.pth", "resnet101", {.resize = 232}, 81.886},
    {"resnet152-394f9c45.pth", "resnet152", {.resize = 256}, 78.312},
    {"resnet152-f82ba261.pth", "resnet152", {.resize = 232}, 82.284},
    {"resnext50_32x4d-7cdf4587.pth", "resnext50_32x4d", {.resize = 256}, 77.618},
    {"resnext50_32x4d-1a0047aa.pth", "resnext50_32x4d", {.resize = 232}, 81.198},
    {"resnext101_32x8d-8ba56ff5.pth", "resnext101_32x8d", {.resize = 256}, 79.312},
    {"resnext101_32x8d-110c445d.pth", "resnext101_32x8d", {.resize = 232}, 82.834},
    {"resnext101_64x4d-173b62eb.pth", "resnext101_64x4d", {.resize = 232}, 83.246},
    {"wide_resnet50_2-95faca4d.pth", "wide_resnet50_2", {.resize = 256}, 78.468},
    {"wide_resnet50_2-9ba9bcbe.pth", "wide_resnet50_2", {.resize = 232}, 81.602},
    {"wide_resnet101_2-32ee1156.pth", "wide_resnet101_2", {.resize = 256}, 78.848},
    {"wide_resnet101_2-d733dc28.pth", "wide_resnet101_2", {.resize = 232}, 82.510},
}};

/// The published weights of that file name (the name alone: a path's folders are ignored).
[[nodiscard]] inline const published_weights& published(std::string_view file) {
  if (const auto slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  for (const auto& w : published_files) {
    if (w.file == file) return w;
  }
  throw std::invalid_argument(kiln::detail::concat(
      "kiln::models::published: '", file, "' is not one of torchvision 0.14's weight files for kiln::models "
      "(kiln::models::published_files lists them, e.g. resnet50-11ad3fa6.pth)"));
}

}  // namespace kiln::models
