#include "../support.hpp"

#include <filesystem>
#include <fstream>

using kiln::test::Mlp;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  auto dir = fs::temp_directory_path() / ("kiln_weights_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}
template <class Net>
std::string load_error(Net& net, const fs::path& path) {
  try {
    kiln::load_weights(net, path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("save_weights and load_weights round-trip parameters and buffers") {
  const auto dir = temp_dir();
  torch::manual_seed(0);
  kiln::test::BnNet a;
  a->bn->running_mean.uniform_();
  kiln::save_weights(a, dir / "a.pt");
  torch::manual_seed(1);
  kiln::test::BnNet b;
  CHECK_FALSE(kiln::test::same_state(a, b));
  kiln::load_weights(b, dir / "a.pt");
  CHECK(kiln::test::same_state(a, b));
  // torch::save of a module is read the same way
  torch::manual_seed(2);
  kiln::test::BnNet c;
  torch::save(c, (dir / "c.pt").string());
  kiln::load_weights(b, dir / "c.pt");
  CHECK(kiln::test::same_state(b, c));
  fs::remove_all(dir);
}

TEST_CASE("a backbone loads its weights from a file saved by an earlier run") {
  const auto dir = temp_dir();
  torch::manual_seed(3);
  Mlp pretrained;
  kiln::save_weights(pretrained, dir / "pre.pt");
  torch::manual_seed(4);
  kiln::trainer t{kiln::backbone<Mlp>{.weights = (dir / "pre.pt").string()}};
  CHECK(kiln::test::same_state(t.backbone(), pretrained));
  fs::remove_all(dir);
}

TEST_CASE("a file that does not fit is a clear error, never a partial load") {
  const auto dir = temp_dir();
  Mlp net;
  Mlp wider(8, 32, 3);
  kiln::save_weights(wider, dir / "wider.pt");
  CHECK(load_error(net, dir / "wider.pt") ==
        "kiln: loading weights from '" + (dir / "wider.pt").string() +
            "': 'fc1.weight' has shape [32, 8] in the file but [16, 8] in the module; the file was "
            "saved from a different model");

  kiln::test::BnNet other;
  kiln::save_weights(other, dir / "other.pt");
  CHECK(load_error(net, dir / "other.pt").find("the file holds entries the module does not have: 'bn'") !=
        std::string::npos);
  kiln::save_weights(net, dir / "mlp.pt");
  CHECK(load_error(other, dir / "mlp.pt").find("the file has no submodule 'bn'") != std::string::npos);

  CHECK(load_error(net, dir / "missing.pt") == "kiln: loading weights from '" + (dir / "missing.pt").string() +
                                                   "': no such file");

  const auto good = dir / "good.pt";
  kiln::save_weights(net, good);
  const auto size = fs::file_size(good);
  fs::copy_file(good, dir / "truncated.pt");
  fs::resize_file(dir / "truncated.pt", size / 2);
  CHECK(load_error(net, dir / "truncated.pt").find("not a LibTorch archive, or truncated or corrupt") !=
        std::string::npos);
  std::ofstream(dir / "text.pt") << "not an archive";
  CHECK(load_error(net, dir / "text.pt").find("not a LibTorch archive, or truncated or corrupt") !=
        std::string::npos);

  CHECK_THROWS_WITH_AS(kiln::trainer(kiln::backbone<Mlp>{.weights = (dir / "wider.pt").string()}),
                       doctest::Contains("has shape [32, 8] in the file but [16, 8]"), std::runtime_error);
  fs::remove_all(dir);
}

TEST_CASE("save_weights leaves the previous file intact when the write fails") {
  const auto dir = temp_dir();
  Mlp net;
  kiln::save_weights(net, dir / "w.pt");
  const auto before = fs::file_size(dir / "w.pt");
  CHECK_THROWS_WITH_AS(kiln::atomic_write(dir / "w.pt", [](const fs::path&) { throw std::runtime_error("disk full"); }),
                       doctest::Contains("the previous file, if any, is intact"), std::runtime_error);
  CHECK(fs::file_size(dir / "w.pt") == before);
  Mlp reloaded;
  kiln::load_weights(reloaded, dir / "w.pt");
  CHECK(kiln::test::same_state(net, reloaded));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++files;
  CHECK(files == 1);  // no temporary left behind
  CHECK_THROWS_WITH_AS(kiln::save_weights(net, dir / "no" / "such" / "dir.pt"),
                       doctest::Contains("does not exist; create it first"), std::runtime_error);
  fs::remove_all(dir);
}
