#include "../support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {
std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("a submission of classes is id,prediction") {
  auto path = fs::temp_directory_path() / "kiln_submission_classes.csv";
  kiln::write_submission(path, torch::tensor({10, 11, 12}), torch::tensor({3, 1, 4}));
  CHECK(read_all(path) == "id,prediction\n10,3\n11,1\n12,4\n");
  fs::remove(path);
}

TEST_CASE("a submission of probabilities has one column per class and round-trips exactly") {
  auto path = fs::temp_directory_path() / "kiln_submission_probs.csv";
  auto probs = torch::tensor({0.1, 0.9, 1.0 / 3.0, 2.0 / 3.0}, torch::kDouble).reshape({2, 2});
  kiln::write_submission(path, torch::tensor({0, 1}), probs);
  std::istringstream lines(read_all(path));
  std::string header, row;
  std::getline(lines, header);
  CHECK(header == "id,class_0,class_1");
  std::getline(lines, row);
  std::getline(lines, row);
  CHECK(row.starts_with("1,"));
  CHECK(std::stod(row.substr(2, row.find(',', 2) - 2)) == 1.0 / 3.0);
  fs::remove(path);
}

TEST_CASE("mismatched ids and predictions are a clear error") {
  CHECK_THROWS_WITH_AS(kiln::write_submission("x.csv", torch::tensor({1, 2}), torch::tensor({1})),
                       "kiln::write_submission: ids must be [N] and predictions [N] (classes) or [N, C] "
                       "(probabilities), got [2] and [1]",
                       std::invalid_argument);
}
