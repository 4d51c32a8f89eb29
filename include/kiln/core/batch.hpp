// kiln/core/batch.hpp — what a batch may look like, and taking it apart.
//
// The trainer accepts any range whose elements are one of:
//   torch::data::Example<>                 what LibTorch's data loaders yield with Stack<>
//   std::vector<torch::data::Example<>>    what they yield without a collation (stacked here)
//   std::pair / std::tuple of two tensors  (input, target)
// For predict, a bare torch::Tensor of inputs is a batch too.
#pragma once

#include <torch/data/example.h>
#include <torch/types.h>

#include <cstddef>
#include <iterator>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln {
namespace detail {

template <class T>
struct is_example_vector : std::false_type {};
template <class D, class T>
struct is_example_vector<std::vector<torch::data::Example<D, T>>> : std::true_type {};

}  // namespace detail

/// An (input, target) batch.
template <class B>
concept LabelledBatch = requires(const std::remove_cvref_t<B>& b) {
  { b.data } -> std::convertible_to<torch::Tensor>;
  { b.target } -> std::convertible_to<torch::Tensor>;
} || detail::is_example_vector<std::remove_cvref_t<B>>::value || requires(const B& b) {
  { std::get<0>(b) } -> std::convertible_to<torch::Tensor>;
  { std::get<1>(b) } -> std::convertible_to<torch::Tensor>;
};

/// A batch that carries inputs (labelled or not).
template <class B>
concept InputBatch = LabelledBatch<B> || std::convertible_to<B, torch::Tensor>;

/// A range that can be iterated once per epoch, yielding batches of type satisfying C.
template <class R>
concept BatchRange = requires(R& r) {
  std::begin(r);
  std::end(r);
  { *std::begin(r) } -> LabelledBatch;
};

template <class R>
concept InputRange = requires(R& r) {
  std::begin(r);
  std::end(r);
  { *std::begin(r) } -> InputBatch;
};

namespace detail {

struct split_batch {
  torch::Tensor input;
  torch::Tensor target;
};

inline torch::Tensor stack_field(const auto& examples, auto field) {
  std::vector<torch::Tensor> parts;
  parts.reserve(examples.size());
  for (const auto& e : examples) parts.push_back(e.*field);
  return torch::stack(parts);
}

/// `t` on `device`, copied without blocking (from pinned memory, the copy overlaps). A tensor
/// already there is returned as is, without the dispatcher's round trip that `to` would take:
/// on a GPU, data stored on the device costs a step nothing here.
inline torch::Tensor on_device(const torch::Tensor& t, const torch::Device& device) {
  if (t.device() == device) return t;
  return t.to(device, /*non_blocking=*/true);
}

/// (input, target) of a labelled batch, moved to `device` (a no-op when already there).
template <class B>
split_batch unpack(const B& b, const torch::Device& device) {
  if constexpr (is_example_vector<B>::value) {
    using E = typename B::value_type;
    return {on_device(stack_field(b, &E::data), device), on_device(stack_field(b, &E::target), device)};
  } else if constexpr (requires { b.data; b.target; }) {
    return {on_device(b.data, device), on_device(b.target, device)};
  } else {
    return {on_device(std::get<0>(b), device), on_device(std::get<1>(b), device)};
  }
}

/// The inputs of any batch, moved to `device`.
template <class B>
torch::Tensor inputs_of(const B& b, const torch::Device& device) {
  if constexpr (std::is_convertible_v<B, torch::Tensor>) {
    return on_device(torch::Tensor(b), device);
  } else {
    return unpack(b, device).input;
  }
}

}  // namespace detail
}  // namespace kiln
