// Tensors to and from the JSON of tests/reference/grad_scaler_rules.py, with inf and NaN as
// strings ("inf", "-inf", "nan"), which JSON has no numbers for.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "../reference/reference.hpp"
#include "../support.hpp"

namespace kiln::test {

inline nlohmann::json encode(const torch::Tensor& t) {
  const auto flat = t.detach().to(torch::kCPU).to(torch::kDouble).contiguous().reshape({-1});
  nlohmann::json data = nlohmann::json::array();
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    const double v = flat.data_ptr<double>()[i];
    if (std::isfinite(v)) {
      data.push_back(v);
    } else {
      data.push_back(std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
    }
  }
  return {{"shape", t.sizes().vec()}, {"data", data}};
}

inline torch::Tensor decode(const nlohmann::json& j) {
  std::vector<double> values;
  for (const auto& v : j.at("data")) values.push_back(v.is_string() ? std::stod(v.get<std::string>()) : v.get<double>());
  return torch::tensor(values, torch::kDouble).to(torch::kFloat).reshape(j.at("shape").get<std::vector<std::int64_t>>());
}

/// Same shape and the same value in every element, NaN matching NaN.
inline bool same_values(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.detach().to(torch::kCPU), y = b.detach().to(torch::kCPU);
  if (x.sizes() != y.sizes() || x.scalar_type() != y.scalar_type()) return false;
  return (x.eq(y).logical_or(x.isnan().logical_and(y.isnan()))).all().item<bool>();
}

/// The devices a test runs on: the CPU, and the first CUDA device when there is one.
inline std::vector<torch::Device> test_devices() {
  std::vector<torch::Device> devices{torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  return devices;
}

}  // namespace kiln::test
