// Parity with scikit-learn: kiln's value for each case beside the reference computed by
// tests/reference/sklearn_metrics.py, run once for all the cases of a test file.
//
//   kiln::test::parity cases{"classification"};
//   cases.add("f1 average=macro beta=1 zero_division=0", output, target, {value});
//   cases.check();   // one Python launch; every case within 1e-9
//
// Agreement: |kiln − reference| <= 1e-9 · max(1, |reference|): absolute for values within
// [−1, 1] (every classification and ranking metric), relative beyond (regression errors); nan
// agrees only with nan. Set KILN_PARITY_SUMMARY=1 to print, per metric, the number of cases and
// the largest difference seen, |kiln − reference| / max(1, |reference|).
#pragma once

#include "../reference/reference.hpp"
#include "../support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace kiln::test {

inline constexpr double parity_tolerance = 1e-9;

/// Random sizes and tensors for parity cases, repeatable from a seed.
struct random_cases {
  explicit random_cases(std::uint64_t seed) : engine(seed), generator(at::detail::createCPUGenerator(seed)) {}

  std::int64_t integer(std::int64_t low, std::int64_t high) {  // in [low, high]
    return std::uniform_int_distribution<std::int64_t>{low, high}(engine);
  }
  bool chance(double p) { return std::bernoulli_distribution{p}(engine); }
  torch::Tensor normal(torch::IntArrayRef shape, double scale = 1.0) {
    return torch::randn(shape, generator, torch::kDouble).mul_(scale);
  }
  /// Integers in [low, high] as float64: scores with many ties.
  torch::Tensor steps(torch::IntArrayRef shape, std::int64_t low, std::int64_t high) {
    return torch::randint(low, high + 1, shape, generator, torch::kDouble);
  }
  torch::Tensor classes(std::int64_t n, std::int64_t classes) {
    return torch::randint(0, classes, {n}, generator, torch::kLong);
  }

  std::mt19937_64 engine;
  at::Generator generator;
};

/// The metric's value after it has seen (output, target) split into 1–4 batches at random
/// places: a streaming metric must not care where the batches end.
template <class M>
std::vector<double> streamed(M metric, const torch::Tensor& output, const torch::Tensor& target, random_cases& rng) {
  const std::int64_t n = output.size(0);
  std::vector<std::int64_t> cuts{0, n};
  for (std::int64_t extra = std::min<std::int64_t>(rng.integer(0, 3), n - 1); extra > 0; --extra) {
    cuts.push_back(rng.integer(1, n - 1));
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  metric.reset(torch::kCPU);
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    metric.update(output.narrow(0, cuts[i], cuts[i + 1] - cuts[i]), target.narrow(0, cuts[i], cuts[i + 1] - cuts[i]));
  }
  const auto value = metric.compute();
  if constexpr (std::is_convertible_v<decltype(value), double>) {
    return {static_cast<double>(value)};
  } else {
    const torch::Tensor flat = value.to(torch::kDouble).contiguous().reshape({-1});
    const double* data = flat.data_ptr<double>();
    return {data, data + flat.numel()};
  }
}

/// A labelled classification case.
struct labelled {
  torch::Tensor output, target;
};

/// A random classification case: class scores [N, C] with C in [min_classes, 6], or one logit
/// [N]; scores continuous (most cases), in a few integer steps (ties), or all equal; targets
/// random, with the last class left out, all one class, or every class present.
inline labelled random_classification(random_cases& rng, bool single_logit, std::int64_t min_classes = 2) {
  const std::int64_t n = rng.integer(1, 60);
  const std::int64_t classes = single_logit ? 2 : rng.integer(min_classes, 6);
  const std::vector<std::int64_t> shape = single_logit ? std::vector<std::int64_t>{n} : std::vector<std::int64_t>{n, classes};
  const std::int64_t kind = rng.integer(0, 9);
  torch::Tensor output = kind < 6 ? rng.normal(shape, 2.0) : kind < 9 ? rng.steps(shape, -2, 2) : torch::zeros(shape, torch::kDouble);
  torch::Tensor target;
  switch (rng.integer(0, 3)) {
    case 0: target = rng.classes(n, classes); break;
    case 1: target = rng.classes(n, classes - 1); break;  // the last class absent
    case 2: target = torch::full({n}, rng.integer(0, classes - 1), torch::kLong); break;
    default:  // every class present when there are enough samples
      target = torch::cat({torch::arange(std::min(n, classes), torch::kLong), rng.classes(n - std::min(n, classes), classes)});
      target = target.index_select(0, torch::randperm(n, rng.generator, torch::kLong));
  }
  return {output, target};
}

inline bool agrees(double kiln, double reference) {
  if (std::isnan(kiln) || std::isnan(reference)) return std::isnan(kiln) && std::isnan(reference);
  return std::abs(kiln - reference) <= parity_tolerance * std::max(1.0, std::abs(reference));
}

class parity {
 public:
  explicit parity(std::string label) : label_(std::move(label)) {}

  /// `spec` is "<metric> key=value ...", as sklearn_metrics.py reads it.
  void add(std::string spec, const torch::Tensor& output, const torch::Tensor& target, std::vector<double> kiln) {
    cases_.push_back({std::move(spec), output, target, std::move(kiln)});
  }

  /// Runs the reference for every case added and checks each; returns the largest difference
  /// (scaled as the check scales it).
  double check() {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("kiln_parity_" + label_ + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    write_cases(dir / "cases.txt");
    const std::string command = kiln::test::python() + " " KILN_TEST_SOURCE_DIR "/reference/sklearn_metrics.py " +
                                (dir / "cases.txt").string() + " " + (dir / "results.txt").string();
    REQUIRE_MESSAGE(std::system(command.c_str()) == 0,
                    "the scikit-learn reference failed: " << command
                                                          << " (python3-sklearn comes with scripts/setup.sh; or set KILN_PYTHON)");
    const auto references = read_results(dir / "results.txt");
    REQUIRE(references.size() == cases_.size());

    std::map<std::string, std::pair<std::size_t, double>> per_metric;  // cases, largest difference
    double worst = 0;
    for (std::size_t i = 0; i < cases_.size(); ++i) {
      const auto& c = cases_[i];
      const auto& reference = references[i];
      INFO("case ", i, ": ", c.spec, "\noutput ", c.output.sizes(), ":\n", c.output, "\ntarget:\n", c.target);
      REQUIRE(reference.size() == c.kiln.size());
      auto& [count, largest] = per_metric[c.spec.substr(0, c.spec.find(' ', c.spec.find(' ') + 1))];
      ++count;
      for (std::size_t j = 0; j < reference.size(); ++j) {
        CHECK_MESSAGE(agrees(c.kiln[j], reference[j]), "kiln ", c.kiln[j], " vs scikit-learn ", reference[j]);
        if (!std::isnan(reference[j])) {
          largest = std::max(largest, std::abs(c.kiln[j] - reference[j]) / std::max(1.0, std::abs(reference[j])));
        }
      }
      worst = std::max(worst, largest);
    }
    if (std::getenv("KILN_PARITY_SUMMARY") != nullptr) {
      for (const auto& [metric, stats] : per_metric) {
        std::printf("parity %-16s %-36s %4zu cases, largest |kiln - sklearn| / max(1, |sklearn|) %.3g\n", label_.c_str(), metric.c_str(),
                    stats.first, stats.second);
      }
    }
    std::filesystem::remove_all(dir);
    return worst;
  }

 private:
  struct entry {
    std::string spec;
    torch::Tensor output, target;
    std::vector<double> kiln;
  };

  static void write_tensor(std::FILE* out, const torch::Tensor& t) {
    const auto values = t.to(torch::kDouble).contiguous();
    std::fprintf(out, "%lld", static_cast<long long>(values.dim()));
    for (const auto size : values.sizes()) std::fprintf(out, " %lld", static_cast<long long>(size));
    const double* data = values.data_ptr<double>();
    for (std::int64_t i = 0; i < values.numel(); ++i) std::fprintf(out, " %.17g", data[i]);
    std::fputc('\n', out);
  }

  void write_cases(const std::filesystem::path& path) const {
    std::FILE* out = std::fopen(path.c_str(), "w");
    REQUIRE(out != nullptr);
    for (std::size_t i = 0; i < cases_.size(); ++i) {
      std::fprintf(out, "%zu %s\n", i, cases_[i].spec.c_str());
      write_tensor(out, cases_[i].output);
      write_tensor(out, cases_[i].target);
    }
    std::fclose(out);
  }

  static std::vector<std::vector<double>> read_results(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::vector<std::vector<double>> results;
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::size_t id = 0, count = 0;
      fields >> id >> count;
      std::vector<double> values;
      for (std::string token; values.size() < count && fields >> token;) values.push_back(std::strtod(token.c_str(), nullptr));
      results.push_back(std::move(values));
    }
    return results;
  }

  std::string label_;
  std::vector<entry> cases_;
};

}  // namespace kiln::test
