// Small models and data shared by kiln's tests.
#pragma once

#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace kiln::test {

/// 32 -> 64 -> 2 without BatchNorm: batch composition does not change its gradients.
struct MlpImpl : torch::nn::Module {
  static constexpr std::size_t depth = 3;
  explicit MlpImpl(std::int64_t in = 8, std::int64_t hidden = 16, std::int64_t out = 3) {
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    act = register_module("act", torch::nn::Tanh());
    fc2 = register_module("fc2", torch::nn::Linear(hidden, out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(act->forward(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Tanh act{nullptr};
};
TORCH_MODULE(Mlp);

/// Linear -> BatchNorm -> ReLU -> Linear, as four top-level children.
struct BnNetImpl : torch::nn::Module {
  BnNetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    bn = register_module("bn", torch::nn::BatchNorm1d(16));
    act = register_module("act", torch::nn::ReLU());
    fc2 = register_module("fc2", torch::nn::Linear(16, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return fc2->forward(act->forward(bn->forward(fc1->forward(x))));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
  torch::nn::ReLU act{nullptr};
};
TORCH_MODULE(BnNet);

/// A classification problem: 8 features, 3 classes, a little structure to learn.
struct toy_data {
  torch::Tensor x, y;
};
inline toy_data make_toy(std::int64_t n, std::uint64_t seed = 0) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto x = torch::randn({n, 8}, gen);
  auto y = (x.narrow(1, 0, 3).argmax(1)).to(torch::kLong);
  return {x, y};
}

/// Every parameter and buffer of `a` equal, bit for bit, to the one of the same name in `b`.
template <class A, class B>
bool same_state(const A& a, const B& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  auto ba = a->named_buffers(), bb = b->named_buffers();
  if (pa.size() != pb.size() || ba.size() != bb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (!torch::equal(pa[i].value(), pb[i].value())) return false;
  }
  for (std::size_t i = 0; i < ba.size(); ++i) {
    if (!torch::equal(ba[i].value(), bb[i].value())) return false;
  }
  return true;
}

/// The message of the std::exception `f()` throws, or "no error".
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

/// A directory in which creating a file fails, or an empty path when this machine has none to
/// offer: a fresh directory without write permission, or, for root (whom permissions do not
/// stop), /sys (sysfs takes no new files).
/// An empty directory of this process under the system's temporary one:
/// <tmp>/kiln_<area>_<name>_<pid>, emptied if a former run left it.
inline std::filesystem::path fresh_dir(std::string_view area, std::string_view name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kiln_" + std::string{area} + "_" + std::string{name} + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// True when `text` holds `part`: for checking the parts of an error message that matter.
inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

inline std::filesystem::path unwritable_directory() {
  auto can_create_in = [](const std::filesystem::path& dir) {
    const auto probe = dir / "probe";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return false;
    ::close(fd);
    ::unlink(probe.c_str());
    return true;
  };
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_read_only_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  if (!can_create_in(dir)) return dir;
  if (std::filesystem::is_directory("/sys") && !can_create_in("/sys")) return "/sys";
  return {};
}

inline std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.detach().clone());
  return out;
}

inline double max_abs_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

}  // namespace kiln::test
