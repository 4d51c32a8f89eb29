// kiln/model/scripted.hpp — a TorchScript module (torch.jit.save, e.g. a torchvision model
// traced in Python) used as a kiln backbone.
//
// kiln::scripted loads the file with torch::jit::load and shows it as a torch::nn::Module:
// one child per top-level child of the script, sharing its parameters and buffers, so that
// freeze<N>, train()/eval(), the optimizer and save_weights work on it as on any module.
//
//   kiln::backbone<kiln::scripted>{.module = kiln::scripted{"resnet18_traced.pt"}}
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/script.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace kiln {
namespace detail {

// nn::Module names may not contain '.'; the script's nested names do.
inline std::string flat_name(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

class scripted_childImpl : public torch::nn::Module {
 public:
  explicit scripted_childImpl(torch::jit::Module child) : child_(std::move(child)) {
    for (const auto& p : child_.named_parameters(/*recurse=*/true)) {
      register_parameter(flat_name(p.name), p.value, p.value.requires_grad());
    }
    for (const auto& b : child_.named_buffers(/*recurse=*/true)) {
      register_buffer(flat_name(b.name), b.value);
    }
  }
  void train(bool on = true) override {
    torch::nn::Module::train(on);
    child_.train(on);
  }

 private:
  torch::jit::Module child_;
};
TORCH_MODULE(scripted_child);

}  // namespace detail

class scriptedImpl : public torch::nn::Module {
 public:
  explicit scriptedImpl(const std::string& path) {
    try {
      script_ = torch::jit::load(path);
    } catch (const c10::Error& e) {
      std::string what = e.what();
      throw std::runtime_error("kiln::scripted: cannot load TorchScript module '" + path +
                               "': " + what.substr(0, what.find('\n')) +
                               " (write it from Python with torch.jit.save)");
    }
    for (const auto& p : script_.named_parameters(/*recurse=*/false)) {
      register_parameter(p.name, p.value, p.value.requires_grad());
    }
    for (const auto& b : script_.named_buffers(/*recurse=*/false)) register_buffer(b.name, b.value);
    for (const auto& c : script_.named_children()) {
      register_module(c.name, detail::scripted_child(c.value));
    }
    train(script_.is_training());
  }

  torch::Tensor forward(const torch::Tensor& x) { return script_.forward({x}).toTensor(); }

  void train(bool on = true) override {
    torch::nn::Module::train(on);
    script_.train(on);
    // Module::train recursed into the children, which set their script children again: the
    // frozen ones are put back in eval mode by the trainer afterwards.
  }

  /// The TorchScript module itself.
  [[nodiscard]] torch::jit::Module& script() noexcept { return script_; }

 private:
  torch::jit::Module script_;
};
TORCH_MODULE(scripted);

}  // namespace kiln
