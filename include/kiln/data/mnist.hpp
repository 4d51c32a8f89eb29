// kiln/data/mnist.hpp — MNIST digits as tensors, and picking classes out of a labelled set.
//
//   auto train = kiln::data::mnist("data/mnist", kiln::data::split::train);
//   auto low = kiln::data::select_classes(train, {0, 1, 2, 3, 4});   // labels stay 0..4
//   auto high = kiln::data::select_classes(train, {5, 6, 7, 8, 9});  // labels become 0..4
#pragma once

#include <kiln/data/idx.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::data {

enum class split { train, test };

/// Images and labels of a classification set.
struct labelled {
  torch::Tensor images;  ///< float32 [N, 1, H, W] in [0, 1]
  torch::Tensor labels;  ///< int64 [N]
};

/// Reads `root`/{train,t10k}-{images-idx3,labels-idx1}-ubyte. Pixels are scaled to [0, 1] as
/// LibTorch's MNIST dataset does.
KILN_DECL labelled mnist(const std::filesystem::path& root, split which);

/// The samples whose label is one of `classes`, relabelled by their position in `classes`.
KILN_DECL labelled select_classes(const labelled& set, const std::vector<std::int64_t>& classes);

}  // namespace kiln::data

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::data {

KILN_DECL labelled mnist(const std::filesystem::path& root, split which) {
  const std::string prefix = which == split::train ? "train" : "t10k";
  auto images = read_idx(root / (prefix + "-images-idx3-ubyte"));
  auto labels = read_idx(root / (prefix + "-labels-idx1-ubyte"));
  if (images.dim() != 3 || labels.dim() != 1 || images.size(0) != labels.size(0)) {
    throw std::runtime_error(detail::concat("kiln::data::mnist('", root.string(), "'): ", prefix,
                                            " images ", images.sizes(), " and labels ", labels.sizes(),
                                            " do not match; expected [N, H, W] and [N]"));
  }
  return {images.unsqueeze(1).to(torch::kFloat32).div_(255.0), labels.to(torch::kLong)};
}

KILN_DECL labelled select_classes(const labelled& set, const std::vector<std::int64_t>& classes) {
  auto keep = torch::zeros_like(set.labels, torch::kBool);
  auto relabelled = torch::full_like(set.labels, -1);
  for (std::size_t i = 0; i < classes.size(); ++i) {
    auto match = set.labels.eq(classes[i]);
    keep.logical_or_(match);
    relabelled.masked_fill_(match, static_cast<std::int64_t>(i));
  }
  auto rows = keep.nonzero().squeeze(1);
  return {set.images.index_select(0, rows), relabelled.index_select(0, rows)};
}

}  // namespace kiln::data

#endif  // KILN_FUNCTION_DEFINITIONS
