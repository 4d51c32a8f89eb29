// kiln/cv/splitters.hpp — K-fold splits of a data set, equal to scikit-learn's index for index.
//
//   kiln::cv::k_fold{.folds = 5}                       KFold(5): consecutive blocks, the first
//                                                      n % 5 folds one sample larger
//   kiln::cv::k_fold{.folds = 5, .shuffle = true, .seed = 7}
//                                                      KFold(5, shuffle=True, random_state=7)
//   kiln::cv::stratified_k_fold{.folds = 5}            StratifiedKFold(5): every fold keeps the
//                                                      classes' proportions; for classification
//   kiln::cv::stratified_k_fold{.folds = 5, .shuffle = true, .seed = 7}
//   kiln::cv::repeated_stratified_k_fold{.folds = 5, .repeats = 3, .seed = 7}
//                                                      RepeatedStratifiedKFold: `repeats`
//                                                      shuffled stratified splits drawn from one
//                                                      random stream, one after the other
//
// split(labels) returns the folds in scikit-learn's order, each as the indices of its training
// and its held-out samples, ascending, int64 on the CPU. k_fold needs only the number of samples
// (split(n), or the labels' first dimension); the stratified splitters read class labels: [N] or
// [N, 1], integers or bool, or floating values that are all whole numbers (scikit-learn's binary
// and multiclass targets), with classes numbered in order of first appearance as scikit-learn
// numbers them. Shuffling draws from numpy's RandomState(seed) as scikit-learn does
// (kiln/detail/numpy_random.hpp), so shuffled folds are equal too (tests/cv/splitters.cpp checks
// them against scikit-learn on random labels).
//
// Bad input gets scikit-learn's verdicts, as std::invalid_argument naming the splitter: fewer
// than 2 folds, more folds than samples, a seed outside [0, 2^32 − 1], continuous or
// multi-column targets, every class smaller than the number of folds. When only the least
// populated class is smaller than the number of folds, the split is made and a warning on stderr
// says which class misses from some held-out folds.
//
//   const auto folds = kiln::cv::stratified_k_fold{.folds = 5, .shuffle = true, .seed = 0}.split(y);
//   for (const auto& [train, test] : folds) { x.index_select(0, train); ... }
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/describe.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/detail/numpy_random.hpp>

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::cv {

/// One split: the indices of the samples to train on and of those held out, ascending.
struct fold {
  torch::Tensor train;  ///< int64 on the CPU
  torch::Tensor test;   ///< int64 on the CPU
};

/// KFold: `folds` consecutive blocks of the (shuffled, when asked) sample order.
struct k_fold {
  std::int64_t folds = 5;
  bool shuffle = false;
  std::int64_t seed = 0;  ///< numpy's RandomState seed, in [0, 2^32 − 1]; used only when shuffling

  /// How many times each sample is held out.
  static constexpr std::int64_t repeats = 1;

  [[nodiscard]] KILN_DECL std::vector<fold> split(std::int64_t samples) const;
  [[nodiscard]] std::vector<fold> split(const torch::Tensor& labels) const { return split(labels.size(0)); }
};

/// StratifiedKFold: each held-out fold gets each class's samples in the proportion of the whole.
struct stratified_k_fold {
  std::int64_t folds = 5;
  bool shuffle = false;
  std::int64_t seed = 0;  ///< numpy's RandomState seed, in [0, 2^32 − 1]; used only when shuffling

  static constexpr std::int64_t repeats = 1;

  [[nodiscard]] KILN_DECL std::vector<fold> split(const torch::Tensor& labels) const;
};

/// RepeatedStratifiedKFold: `repeats` shuffled stratified splits, `folds` × `repeats` folds in all,
/// the random stream going on from one repetition to the next.
struct repeated_stratified_k_fold {
  std::int64_t folds = 5;
  std::int64_t repeats = 10;
  std::int64_t seed = 0;  ///< numpy's RandomState seed, in [0, 2^32 − 1]

  [[nodiscard]] KILN_DECL std::vector<fold> split(const torch::Tensor& labels) const;
};

}  // namespace kiln::cv

namespace kiln::detail {

/// Class labels numbered in order of first appearance, after scikit-learn's checks of them.
struct encoded_classes {
  std::vector<std::int64_t> codes;   ///< per sample
  std::vector<std::int64_t> counts;  ///< per class
  std::vector<double> labels;        ///< each class's label, for messages
};

KILN_DECL encoded_classes encode_classes(std::string_view who, const torch::Tensor& labels);

/// The folds of a stratified split of `classes`, drawing from `random` when it is not null.
KILN_DECL std::vector<cv::fold> stratified_folds(std::string_view who, const encoded_classes& classes,
                                                 std::int64_t folds, numpy_random_state* random);

/// Fewer than 2 folds, or more folds than samples (a negative count when it is not known yet).
KILN_DECL void check_folds(std::string_view who, std::int64_t folds, std::int64_t samples);
KILN_DECL std::uint32_t numpy_seed(std::string_view who, std::int64_t seed);

/// The folds whose held-out samples are those of `test_fold` == 0, 1, ...
KILN_DECL std::vector<cv::fold> folds_of(const std::vector<std::int64_t>& test_fold, std::int64_t folds);

/// The first dimension of labels that have one, else −1.
inline std::int64_t samples_of(const torch::Tensor& labels) {
  return labels.defined() && labels.dim() > 0 ? labels.size(0) : -1;
}

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void check_folds(std::string_view who, std::int64_t folds, std::int64_t samples) {
  if (folds < 2) {
    throw std::invalid_argument(concat(
        who, ": folds must be at least 2 (cross-validation needs a part to train on and a part held out), got ",
        folds));
  }
  if (samples >= 0 && folds > samples) {
    throw std::invalid_argument(concat(who, ": folds=", folds, " is more than the ", samples,
                                                     " samples; use at most as many folds as samples"));
  }
}

KILN_DECL std::uint32_t numpy_seed(std::string_view who, std::int64_t seed) {
  if (seed < 0 || seed > std::int64_t{0xffffffff}) {
    throw std::invalid_argument(concat(
        who, ": seed must be in [0, 4294967295] (numpy's RandomState takes 32-bit seeds), got ", seed));
  }
  return static_cast<std::uint32_t>(seed);
}

KILN_DECL encoded_classes encode_classes(std::string_view who, const torch::Tensor& labels) {
  if (!labels.defined() || labels.dim() == 0 || labels.dim() > 2 || (labels.dim() == 2 && labels.size(1) != 1)) {
    throw std::invalid_argument(concat(
        who, ": the labels must be one class label per sample, [N] or [N, 1], got ",
        labels.defined() ? describe(labels) : std::string{"an undefined tensor"},
        "; a stratified split needs one class per sample (use kiln::cv::k_fold for anything else)"));
  }
  const auto values = labels.reshape({-1}).to(torch::kCPU, torch::kDouble).contiguous();
  const double* data = values.data_ptr<double>();
  const auto n = values.numel();
  if (labels.is_floating_point() || labels.is_complex()) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(data[i]) || data[i] != std::trunc(data[i])) {
        throw std::invalid_argument(concat(
            who, ": the labels are continuous (sample ", i, " is ", data[i],
            "), and a stratified split needs class labels; round them to classes, or use kiln::cv::k_fold"));
      }
    }
  }
  encoded_classes out;
  out.codes.resize(static_cast<std::size_t>(n));
  std::unordered_map<double, std::int64_t> code_of;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto [it, added] = code_of.try_emplace(data[i], static_cast<std::int64_t>(out.labels.size()));
    if (added) {
      out.labels.push_back(data[i]);
      out.counts.push_back(0);
    }
    out.codes[static_cast<std::size_t>(i)] = it->second;
    ++out.counts[static_cast<std::size_t>(it->second)];
  }
  return out;
}

KILN_DECL std::vector<cv::fold> folds_of(const std::vector<std::int64_t>& test_fold, std::int64_t folds) {
  std::vector<std::vector<std::int64_t>> train(static_cast<std::size_t>(folds)), test(static_cast<std::size_t>(folds));
  for (std::size_t i = 0; i < test_fold.size(); ++i) {
    for (std::int64_t k = 0; k < folds; ++k) {
      (k == test_fold[i] ? test : train)[static_cast<std::size_t>(k)].push_back(static_cast<std::int64_t>(i));
    }
  }
  std::vector<cv::fold> out;
  out.reserve(static_cast<std::size_t>(folds));
  auto tensor = [](const std::vector<std::int64_t>& indices) {
    return torch::tensor(indices, torch::kLong);
  };
  for (std::size_t k = 0; k < train.size(); ++k) out.push_back({tensor(train[k]), tensor(test[k])});
  return out;
}

KILN_DECL std::vector<cv::fold> stratified_folds(std::string_view who, const encoded_classes& classes,
                                                 std::int64_t folds, numpy_random_state* random) {
  const auto n_classes = static_cast<std::int64_t>(classes.counts.size());
  std::int64_t least = 0;
  for (std::int64_t k = 1; k < n_classes; ++k) {
    if (classes.counts[static_cast<std::size_t>(k)] < classes.counts[static_cast<std::size_t>(least)]) least = k;
  }
  const std::int64_t fewest = classes.counts[static_cast<std::size_t>(least)];
  bool every_class_smaller = true;
  for (const auto count : classes.counts) every_class_smaller = every_class_smaller && count < folds;
  if (every_class_smaller) {
    throw std::invalid_argument(concat(who, ": folds=", folds, " is more than the samples of every class (the largest has ",
                                       *std::max_element(classes.counts.begin(), classes.counts.end()),
                                       "); use fewer folds"));
  }
  if (fewest < folds) {
    std::fprintf(stderr, "%s\n",
                 concat(who, ": warning: the least populated class (label ", classes.labels[static_cast<std::size_t>(least)],
                        ") has only ", fewest, " members, fewer than folds=", folds,
                        ", so some held-out folds have none of it")
                     .c_str());
  }
  // How many samples of each class each fold holds out: deal the samples, sorted by class, to the
  // folds in turn (scikit-learn's round robin over the sorted labels).
  std::vector<std::int64_t> allocation(static_cast<std::size_t>(folds * n_classes), 0);
  std::int64_t position = 0;
  for (std::int64_t k = 0; k < n_classes; ++k) {
    for (std::int64_t c = 0; c < classes.counts[static_cast<std::size_t>(k)]; ++c, ++position) {
      ++allocation[static_cast<std::size_t>((position % folds) * n_classes + k)];
    }
  }
  // Each class's samples, in their order, get the folds in blocks: 0 0 1 1 2 ..., shuffled when
  // asked, one class after another from the same random stream.
  std::vector<std::int64_t> test_fold(classes.codes.size());
  for (std::int64_t k = 0; k < n_classes; ++k) {
    std::vector<std::int64_t> folds_for_class;
    folds_for_class.reserve(static_cast<std::size_t>(classes.counts[static_cast<std::size_t>(k)]));
    for (std::int64_t f = 0; f < folds; ++f) {
      folds_for_class.insert(folds_for_class.end(), static_cast<std::size_t>(allocation[static_cast<std::size_t>(f * n_classes + k)]), f);
    }
    if (random != nullptr) random->shuffle(std::span<std::int64_t>{folds_for_class});
    std::size_t next = 0;
    for (std::size_t i = 0; i < classes.codes.size(); ++i) {
      if (classes.codes[i] == k) test_fold[i] = folds_for_class[next++];
    }
  }
  return folds_of(test_fold, folds);
}

}  // namespace kiln::detail

namespace kiln::cv {

KILN_DECL std::vector<fold> k_fold::split(std::int64_t samples) const {
  constexpr std::string_view who = "kiln::cv::k_fold";
  detail::check_folds(who, folds, samples);
  std::vector<std::int64_t> order(static_cast<std::size_t>(samples));
  for (std::int64_t i = 0; i < samples; ++i) order[static_cast<std::size_t>(i)] = i;
  if (shuffle) {
    detail::numpy_random_state random{detail::numpy_seed(who, seed)};
    random.shuffle(std::span<std::int64_t>{order});
  }
  std::vector<std::int64_t> test_fold(order.size());
  std::size_t start = 0;
  for (std::int64_t f = 0; f < folds; ++f) {
    const auto size = static_cast<std::size_t>(samples / folds + (f < samples % folds ? 1 : 0));
    for (std::size_t i = start; i < start + size; ++i) test_fold[static_cast<std::size_t>(order[i])] = f;
    start += size;
  }
  return detail::folds_of(test_fold, folds);
}

KILN_DECL std::vector<fold> stratified_k_fold::split(const torch::Tensor& labels) const {
  constexpr std::string_view who = "kiln::cv::stratified_k_fold";
  detail::check_folds(who, folds, detail::samples_of(labels));
  const auto classes = detail::encode_classes(who, labels);
  if (!shuffle) return detail::stratified_folds(who, classes, folds, nullptr);
  detail::numpy_random_state random{detail::numpy_seed(who, seed)};
  return detail::stratified_folds(who, classes, folds, &random);
}

KILN_DECL std::vector<fold> repeated_stratified_k_fold::split(const torch::Tensor& labels) const {
  constexpr std::string_view who = "kiln::cv::repeated_stratified_k_fold";
  if (repeats < 1) {
    throw std::invalid_argument(detail::concat(who, ": repeats must be at least 1, got ", repeats));
  }
  detail::check_folds(who, folds, detail::samples_of(labels));
  const auto classes = detail::encode_classes(who, labels);
  detail::numpy_random_state random{detail::numpy_seed(who, seed)};
  std::vector<fold> out;
  for (std::int64_t r = 0; r < repeats; ++r) {
    auto one = detail::stratified_folds(who, classes, folds, &random);
    out.insert(out.end(), std::make_move_iterator(one.begin()), std::make_move_iterator(one.end()));
  }
  return out;
}

}  // namespace kiln::cv

#endif  // KILN_FUNCTION_DEFINITIONS
