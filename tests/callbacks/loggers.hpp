// What the loggers' tests share: a short real fit, a context to call hooks on by hand, files.
#pragma once

#include "../support.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace kiln::test {

/// The short fit every logger test logs: 64 samples in batches of 16 (4 optimizer steps per
/// epoch), 3 epochs, a head (two parameter groups: backbone lr 0.01, head lr 0.1), the rates
/// halved after every epoch, accuracy on validation.
inline constexpr std::int64_t steps_per_epoch = 4;
inline constexpr std::int64_t epochs = 3;
inline double head_lr(std::int64_t epoch) { return 0.1 * std::pow(0.5, static_cast<double>(epoch)); }
inline double backbone_lr(std::int64_t epoch) { return 0.1 * head_lr(epoch); }

template <class... Callbacks>
kiln::history short_fit(Callbacks... callbacks) {
  torch::manual_seed(0);
  auto data = make_toy(64, 3);
  kiln::trainer t{kiln::backbone<Mlp>{.lr_ratio = 0.1}, kiln::head{torch::nn::Linear(3, 3)},
                  kiln::sgd{.lr = 0.1},                  kiln::step_lr{.step_size = 1, .gamma = 0.5},
                  kiln::metrics<kiln::accuracy>{},       kiln::callbacks{std::move(callbacks)...}};
  kiln::data::tensor_batches batches{data.x, data.y, {.batch_size = 16}};
  return t.fit(batches, batches, {.epochs = epochs});
}

/// A context with no trainer behind it, to call a logger's hooks by hand.
struct manual_context {
  torch::nn::Linear model{1, 1};
  torch::optim::SGD optimizer{model->parameters(), 0.1};
  kiln::context ctx{*model, optimizer};
};

/// Puts a confusion matrix into ctx.metrics as kiln::confusion_matrix reports one:
/// "val/confusion_matrix[t,p]". Listed before a logger, the logger sees it.
struct inject_confusion_matrix {
  std::vector<std::vector<double>> counts;
  void on_validation_end(kiln::context& ctx) {
    for (std::size_t t = 0; t < counts.size(); ++t) {
      for (std::size_t p = 0; p < counts[t].size(); ++p) {
        ctx.metrics.set("val/confusion_matrix[" + std::to_string(t) + "," + std::to_string(p) + "]", counts[t][p]);
      }
    }
  }
};

/// A fresh, empty directory for one test, removed with everything in it when the test ends.
struct scratch_directory {
  std::filesystem::path path;

  explicit scratch_directory(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("kiln_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;
  ~scratch_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// Runs a shell command; its exit status and what it wrote to stdout.
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, output};
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace kiln::test
