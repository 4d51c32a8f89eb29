// The splitters against scikit-learn's KFold, StratifiedKFold and RepeatedStratifiedKFold,
// index for index, shuffled and not, on random labels (tests/reference/sklearn_folds.py, one
// Python process for every case); and scikit-learn's verdicts on bad input.
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/cv/splitters.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

using nlohmann::json;

struct split_case {
  std::string splitter;
  std::int64_t folds = 5;
  bool shuffle = false;
  std::int64_t seed = 0;
  std::int64_t repeats = 1;
  std::vector<double> labels;
  bool floating = false;  // hand kiln the labels as float64 rather than int64

  [[nodiscard]] json to_json() const {
    json labels_json = json::array();
    for (const double v : labels) {
      if (floating) {
        labels_json.push_back(v);
      } else {
        labels_json.push_back(static_cast<std::int64_t>(v));
      }
    }
    return {{"splitter", splitter}, {"folds", folds}, {"shuffle", shuffle},
            {"seed", seed},         {"repeats", repeats}, {"labels", labels_json}};
  }

  [[nodiscard]] torch::Tensor label_tensor() const {
    auto t = torch::tensor(labels, torch::kDouble);
    return floating ? t : t.to(torch::kLong);
  }

  [[nodiscard]] std::vector<kiln::cv::fold> split() const {
    const auto y = label_tensor();
    if (splitter == "k_fold") return kiln::cv::k_fold{.folds = folds, .shuffle = shuffle, .seed = seed}.split(y);
    if (splitter == "stratified_k_fold") {
      return kiln::cv::stratified_k_fold{.folds = folds, .shuffle = shuffle, .seed = seed}.split(y);
    }
    return kiln::cv::repeated_stratified_k_fold{.folds = folds, .repeats = repeats, .seed = seed}.split(y);
  }
};

std::vector<std::int64_t> as_vector(const torch::Tensor& t) {
  return {t.data_ptr<std::int64_t>(), t.data_ptr<std::int64_t>() + t.numel()};
}

/// Labels of `classes` classes with uneven sizes, named by values out of order (7, 2, 9, ...), so
/// that numbering them by first appearance matters.
std::vector<double> random_labels(std::mt19937& random, std::int64_t n, std::int64_t classes) {
  static constexpr double names[] = {7, 2, 9, 0, 4, 11, 3};
  std::vector<double> weights;
  for (std::int64_t c = 0; c < classes; ++c) weights.push_back(1.0 + static_cast<double>(c) * 1.5);
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::vector<double> out;
  for (std::int64_t i = 0; i < n; ++i) out.push_back(names[pick(random)]);
  return out;
}

/// What f writes to stderr while it runs.
template <class F>
std::string stderr_of(F&& f) {
  const auto path = std::filesystem::temp_directory_path() / ("kiln_stderr_" + std::to_string(::getpid()));
  std::fflush(stderr);
  const int saved = ::dup(2);
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(file, 2);
  ::close(file);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::ifstream in(path);
  std::string text{std::istreambuf_iterator<char>(in), {}};
  std::filesystem::remove(path);
  return text;
}

}  // namespace

TEST_CASE("the splitters' folds are scikit-learn's, index for index, shuffled or not") {
  std::mt19937 random(2024);
  std::vector<split_case> cases;
  for (const std::int64_t n : {10, 37, 100, 333}) {
    for (const std::int64_t classes : {2, 3, 5}) {
      const auto labels = random_labels(random, n, classes);
      for (const std::int64_t folds : {2, 3, 5}) {
        for (const bool shuffle : {false, true}) {
          for (const std::int64_t seed : {std::int64_t{0}, std::int64_t{7}, std::int64_t{4294967295}}) {
            if (!shuffle && seed != 0) continue;
            cases.push_back({.splitter = "k_fold", .folds = folds, .shuffle = shuffle, .seed = seed, .labels = labels});
            cases.push_back(
                {.splitter = "stratified_k_fold", .folds = folds, .shuffle = shuffle, .seed = seed, .labels = labels});
          }
        }
        cases.push_back({.splitter = "repeated_stratified_k_fold", .folds = folds, .seed = 11, .repeats = 3,
                         .labels = labels});
      }
    }
  }
  // Whole-number floating labels are class labels too.
  cases.push_back({.splitter = "stratified_k_fold", .folds = 4, .shuffle = true, .seed = 3,
                   .labels = random_labels(random, 50, 3), .floating = true});

  json input = json::array();
  for (const auto& c : cases) input.push_back(c.to_json());
  const json expected = kiln::test::run_reference("sklearn_folds.py", input);
  REQUIRE(expected.size() == cases.size());
  std::size_t compared = 0, refused = 0, warned = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    CAPTURE(c.to_json().dump());
    std::vector<kiln::cv::fold> folds;
    std::string error;
    const auto printed = stderr_of([&] { error = kiln::test::message_of([&] { folds = c.split(); }); });
    if (expected[i].contains("error")) {  // scikit-learn refuses it, and so must kiln
      CHECK(kiln::test::contains(error, "kiln::cv::"));
      ++refused;
      continue;
    }
    REQUIRE(error == "no error");
    // A warning exactly where scikit-learn warns.
    CHECK(kiln::test::contains(printed, "warning: the least populated class") == expected[i].contains("warning"));
    warned += expected[i].contains("warning") ? 1 : 0;
    const auto& reference = expected[i]["folds"];
    REQUIRE(folds.size() == reference.size());
    for (std::size_t k = 0; k < folds.size(); ++k) {
      CHECK(as_vector(folds[k].train) == reference[k][0].get<std::vector<std::int64_t>>());
      CHECK(as_vector(folds[k].test) == reference[k][1].get<std::vector<std::int64_t>>());
      ++compared;
    }
  }
  CHECK(compared > 400);
  CHECK(refused > 0);
  CHECK(warned > 0);
}

TEST_CASE("the splitters give scikit-learn's verdicts on bad input") {
  const std::vector<double> two_per_class{0, 0, 1, 1, 2, 2};
  struct bad {
    split_case c;
    std::string kiln_says;
  };
  const std::vector<bad> cases{
      {{.splitter = "stratified_k_fold", .folds = 1, .labels = two_per_class}, "folds must be at least 2"},
      {{.splitter = "k_fold", .folds = 1, .labels = two_per_class}, "folds must be at least 2"},
      {{.splitter = "k_fold", .folds = 7, .labels = two_per_class}, "folds=7 is more than the 6 samples"},
      {{.splitter = "stratified_k_fold", .folds = 7, .labels = two_per_class}, "folds=7 is more than the 6 samples"},
      {{.splitter = "stratified_k_fold", .folds = 3, .labels = {0.5, 1.0, 2.0, 0.0, 1.0, 2.0}, .floating = true},
       "the labels are continuous (sample 0 is 0.5)"},
      {{.splitter = "stratified_k_fold", .folds = 3, .labels = two_per_class},
       "folds=3 is more than the samples of every class (the largest has 2)"},
      {{.splitter = "repeated_stratified_k_fold", .folds = 3, .repeats = 2, .labels = two_per_class},
       "folds=3 is more than the samples of every class"},
      {{.splitter = "stratified_k_fold", .folds = 2, .shuffle = true, .seed = -1, .labels = two_per_class},
       "seed must be in [0, 4294967295]"},
  };
  json input = json::array();
  for (const auto& b : cases) input.push_back(b.c.to_json());
  input.back()["seed"] = nullptr;  // numpy refuses -1 before the splitter sees it; compare the rest
  const json expected = kiln::test::run_reference("sklearn_folds.py", input);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(cases[i].c.to_json().dump());
    if (i + 1 < cases.size()) CHECK(expected[i].contains("error"));  // scikit-learn refuses it too
    const auto message = kiln::test::message_of([&] { (void)cases[i].c.split(); });
    CHECK(kiln::test::contains(message, cases[i].kiln_says));
    CHECK(kiln::test::contains(message, "kiln::cv::"));
  }
  // Labels that are not one class per sample.
  CHECK(kiln::test::contains(
      kiln::test::message_of([] { (void)kiln::cv::stratified_k_fold{}.split(torch::zeros({10, 3})); }),
      "the labels must be one class label per sample, [N] or [N, 1], got [10, 3]"));
}

TEST_CASE("a class smaller than the number of folds is warned about, and the split is scikit-learn's") {
  const split_case c{.splitter = "stratified_k_fold", .folds = 3, .shuffle = true, .seed = 5,
                     .labels = {4, 4, 4, 4, 8, 4, 4, 4, 4, 4, 4, 8}};
  const json expected = kiln::test::run_reference("sklearn_folds.py", json::array({c.to_json()}));
  REQUIRE(expected[0].contains("warning"));
  std::vector<kiln::cv::fold> folds;
  const auto warning = stderr_of([&] { folds = c.split(); });
  CHECK(kiln::test::contains(warning, "kiln::cv::stratified_k_fold: warning: the least populated class (label 8) "
                                      "has only 2 members, fewer than folds=3"));
  REQUIRE(folds.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(as_vector(folds[k].test) == expected[0]["folds"][k][1].get<std::vector<std::int64_t>>());
  }
}

TEST_CASE("each sample is held out once per repetition, and the folds partition the samples") {
  const auto y = torch::randint(0, 3, {40}, torch::kLong);
  const auto folds = kiln::cv::repeated_stratified_k_fold{.folds = 4, .repeats = 3, .seed = 1}.split(y);
  REQUIRE(folds.size() == 12);
  auto held_out = torch::zeros({40}, torch::kLong);
  for (const auto& f : folds) {
    held_out.index_add_(0, f.test, torch::ones_like(f.test));
    CHECK(f.train.size(0) + f.test.size(0) == 40);
  }
  CHECK(torch::equal(held_out, torch::full({40}, 3, torch::kLong)));
}
