// Runs a reference script under PyTorch itself: the test writes its cases as JSON, one Python
// process computes PyTorch's answers and writes them as JSON. Both sides keep doubles exact
// (nlohmann::json and Python's json print the shortest string that reads back as the same double).
//
// The scripts run under /usr/bin/python3, which sees Debian's python3-torch, python3-torchvision
// and python3-sklearn (scripts/setup.sh installs them); KILN_PYTHON names another interpreter.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln::test {

/// The Python that runs the references: $KILN_PYTHON, else /usr/bin/python3.
inline std::string python() {
  const char* python = std::getenv("KILN_PYTHON");
  return python != nullptr && *python != '\0' ? python : "/usr/bin/python3";
}

/// Runs tests/reference/<script> on `input` and returns what it wrote.
inline nlohmann::json run_reference(std::string_view script, const nlohmann::json& input) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("kiln_reference_" + std::to_string(::getpid()) + "_" + std::string{script});
  fs::create_directories(dir);
  const fs::path in = dir / "in.json", out = dir / "out.json", err = dir / "stderr.txt";
  std::ofstream(in) << input.dump();
  const std::string command = python() + " '" +
                              KILN_TEST_SOURCE_DIR + "/reference/" + std::string{script} + "' '" + in.string() +
                              "' '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(command.c_str());
  std::ifstream err_file(err);
  const std::string messages{std::istreambuf_iterator<char>(err_file), {}};
  if (status != 0) {
    fs::remove_all(dir);
    throw std::runtime_error("reference script failed (" + command + "):\n" + messages +
                             "\n(it needs /usr/bin/python3 with python3-torch, python3-torchvision and "
                             "python3-sklearn: run scripts/setup.sh, or set KILN_PYTHON)");
  }
  nlohmann::json result = nlohmann::json::parse(std::ifstream(out));
  fs::remove_all(dir);
  return result;
}

/// |a − b| / |b|, or |a| when b is 0.
inline double relative_error(double a, double b) {
  const double diff = a > b ? a - b : b - a;
  const double scale = b < 0 ? -b : b;
  return scale == 0 ? diff : diff / scale;
}

}  // namespace kiln::test
