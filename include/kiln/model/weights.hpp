// kiln/model/weights.hpp — saving and loading a module's weights, strictly.
//
// save_weights writes parameters and buffers in LibTorch's archive format (what torch::save
// writes for a module), atomically, and seals it with a checksum (kiln/detail/seal.hpp) that
// load_weights verifies; files from torch::save or Python's torch.save have no seal and load as
// they are. load_weights reads such a file into a module and insists
// that it fits: every parameter and buffer present, no extra ones, every shape equal — a file
// from another model is an error naming the first mismatch, not a silent partial load.
//
//   kiln::save_weights(net, "pretrained.pt");
//   kiln::load_weights(net, "pretrained.pt");
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/io/archive.hpp>
#include <kiln/io/atomic_file.hpp>

#include <torch/nn/module.h>
#include <torch/serialize.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kiln {
namespace detail {

/// Throws std::runtime_error("<where>: <problem>; <why>") for a file that does not fit.
[[noreturn, gnu::cold]] inline void does_not_fit(const std::string& where, const std::string& problem,
                                                 const char* why = "it was saved from a different model") {
  throw_runtime_error(where, concat(problem, "; ", why));
}

KILN_DECL void load_tensor(torch::serialize::InputArchive& archive, const std::string& key,
                           torch::Tensor& into, bool is_buffer, const std::string& where,
                           const std::string& prefix);

KILN_DECL void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                           const std::string& where, const std::string& prefix);

}  // namespace detail

/// Writes the parameters and buffers of `module` to `path`, atomically.
template <class ModuleHolder>
void save_weights(const ModuleHolder& module, const std::filesystem::path& path) {
  atomic_write(path, [&](const std::filesystem::path& tmp) {
    auto archive = detail::new_archive();
    module->save(archive);
    detail::save_archive(archive, tmp);
  });
}

/// Reads weights written by save_weights (or torch::save of a module) into `module`.
/// Throws std::runtime_error naming the file and the problem when the file is missing,
/// unreadable, or does not fit the module exactly.
template <class ModuleHolder>
void load_weights(ModuleHolder& module, const std::filesystem::path& path) {
  const std::string where = "kiln: loading weights from '" + path.string() + "'";
  torch::serialize::InputArchive archive;
  detail::load_archive<std::runtime_error>(archive, detail::read_sealed<std::runtime_error>(path, where), where);
  try {
    detail::load_module(*module, archive, where, "");
  } catch (const c10::Error& e) {
    throw std::runtime_error(where + ": " + detail::first_line(e.what()));
  }
}

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void load_tensor(torch::serialize::InputArchive& archive, const std::string& key,
                           torch::Tensor& into, bool is_buffer, const std::string& where,
                           const std::string& prefix) {
  torch::Tensor loaded;
  if (!archive.try_read(key, loaded, is_buffer)) {
    does_not_fit(where, concat("the file has no ", is_buffer ? "buffer" : "parameter", " '", prefix, key, "'"));
  }
  if (loaded.sizes() != into.sizes()) {
    does_not_fit(where,
                 concat("'", prefix, key, "' has shape ", loaded.sizes(), " in the file but ", into.sizes(),
                        " in the module"),
                 "the file was saved from a different model");
  }
  torch::NoGradGuard no_grad;
  into.copy_(loaded);
}

KILN_DECL void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                           const std::string& where, const std::string& prefix) {
  std::vector<std::string> known;  // the module's own entries, to find extra ones in the file
  for (const bool buffers : {false, true}) {
    for (auto& item : buffers ? module.named_buffers(/*recurse=*/false) : module.named_parameters(/*recurse=*/false)) {
      load_tensor(archive, item.key(), item.value(), buffers, where, prefix);
      known.push_back(item.key());
    }
  }
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(child.key(), sub)) {
      does_not_fit(where, concat("the file has no submodule '", prefix, child.key(), "'"));
    }
    load_module(*child.value(), sub, where, prefix + child.key() + ".");
    known.push_back(child.key());
  }
  const auto keys = archive.keys();
  if (keys.size() != known.size()) {
    std::string extra;
    for (const auto& key : keys) {
      if (std::find(known.begin(), known.end(), key) == known.end()) extra += concat(" '", prefix, key, "'");
    }
    does_not_fit(where, "the file holds entries the module does not have:" + extra);
  }
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
