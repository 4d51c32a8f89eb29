// kiln/detail/describe.hpp — tensors as kiln's error messages show them.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <torch/types.h>

#include <string>

namespace kiln::detail {

/// "[64, 10] float32": a tensor's shape and element type, for messages.
KILN_DECL std::string describe(const torch::Tensor& t);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "(undefined)";
  const char* type = nullptr;
  switch (t.scalar_type()) {
    case torch::kFloat: type = "float32"; break;
    case torch::kDouble: type = "float64"; break;
    case torch::kHalf: type = "float16"; break;
    case torch::kBFloat16: type = "bfloat16"; break;
    case torch::kLong: type = "int64"; break;
    case torch::kInt: type = "int32"; break;
    case torch::kShort: type = "int16"; break;
    case torch::kChar: type = "int8"; break;
    case torch::kByte: type = "uint8"; break;
    case torch::kBool: type = "bool"; break;
    default: return concat(t.sizes(), ' ', t.scalar_type());
  }
  return concat(t.sizes(), ' ', type);
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
