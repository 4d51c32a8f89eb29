// kiln/detail/forward.hpp — the trainer's forward pass and loss, with LibTorch's errors
// explained.
//
// LibTorch reports a model fed the wrong shape as "mat1 and mat2 shapes cannot be multiplied
// (64x1024 and 784x128)", with no word of which batch or which part of the pipeline. These
// wrappers catch c10::Error where kiln calls the model and the loss, and rethrow it as
// std::invalid_argument with what was being computed and the shapes and dtypes involved in
// front of LibTorch's message. A try block costs nothing until something is thrown; running out
// of memory is not bad input and passes through unchanged.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/describe.hpp>

#include <c10/util/Exception.h>
#include <torch/types.h>

#include <cstdint>
#include <stdexcept>

namespace kiln::detail {

/// model->forward(input).
template <class Model>
torch::Tensor forward_explained(Model& model, const torch::Tensor& input, std::int64_t batch) {
  try {
    return model->forward(input);
  } catch (const c10::OutOfMemoryError&) {
    throw;
  } catch (const c10::Error& e) {
    throw std::invalid_argument(concat("kiln::trainer: the model failed on batch ", batch, ", input ", describe(input),
                                       ": ", e.what_without_backtrace(),
                                       " (does the data have the shape and dtype the backbone expects?)"));
  }
}

/// loss(output, target); when `check_values` (the first batch of an epoch or of a validation),
/// first the loss's own check_targets, which reads the targets (see kiln/loss/loss.hpp).
template <class Loss>
torch::Tensor loss_explained(Loss& loss, const torch::Tensor& output, const torch::Tensor& target, bool check_values) {
  if constexpr (requires { loss.check_targets(output, target); }) {
    if (check_values) loss.check_targets(output, target);
  }
  try {
    return loss(output, target);
  } catch (const c10::OutOfMemoryError&) {
    throw;
  } catch (const c10::Error& e) {
    throw std::invalid_argument(concat("kiln::trainer: the loss failed on output ", describe(output), " and target ",
                                       describe(target), ": ", e.what_without_backtrace()));
  }
}

}  // namespace kiln::detail
