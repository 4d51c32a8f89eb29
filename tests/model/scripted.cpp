#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/model/scripted.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {
// Exports torchvision's ResNet-18 with Python's torch.jit (the reference) into a fresh folder.
fs::path export_resnet18() {
  auto dir = fs::temp_directory_path() / ("kiln_scripted_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string command =
      kiln::test::python() + " " KILN_TEST_SOURCE_DIR "/model/make_scripted.py " + dir.string();
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0,
                  "python3-torchvision is needed: run scripts/setup.sh (or set KILN_PYTHON)");
  return dir;
}
}  // namespace

TEST_CASE("a torchvision ResNet-18 exported as TorchScript is a backbone: same outputs, freezable, trainable") {
  const auto dir = export_resnet18();
  kiln::scripted resnet{(dir / "resnet18.pt").string()};

  // 1. Loaded outputs equal PyTorch's.
  std::vector<double> expected;
  std::ifstream in(dir / "reference.txt");
  for (double v; in >> v;) expected.push_back(v);
  REQUIRE(expected.size() == 20);
  resnet->eval();
  torch::NoGradGuard no_grad_scope;
  auto x = torch::linspace(-1, 1, 2 * 3 * 32 * 32).reshape({2, 3, 32, 32});
  auto y = resnet->forward(x).flatten();
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(y[i].item<double>() == doctest::Approx(expected[i]).epsilon(1e-5));

  // 2. Children mirror the script's: conv1, bn1, relu, maxpool, layer1..4, avgpool, fc.
  REQUIRE(resnet->children().size() == 10);
  CHECK(resnet->named_children()[4].key() == "layer1");
  CHECK(resnet->parameters().size() == resnet->script().parameters().size());

  // 3. freeze<5> (through layer1) keeps those weights and BatchNorm statistics; the rest trains.
  const auto frozen = kiln::test::snapshot(resnet->named_children()[4].value()->parameters());
  const auto frozen_stats = kiln::test::snapshot(resnet->named_children()[1].value()->buffers());
  const auto fc_before = kiln::test::snapshot(resnet->named_children()[9].value()->parameters());
  auto images = torch::randn({8, 3, 32, 32});
  auto labels = torch::randint(0, 2, {8}, torch::kLong);
  kiln::trainer t{kiln::backbone<kiln::scripted>{.module = resnet}, kiln::freeze<5>{},
                  kiln::head{torch::nn::Linear(10, 2)}, kiln::sgd{.lr = 0.05}};
  {
    torch::AutoGradMode enable(true);
    t.fit(kiln::data::tensor_batches{images, labels, {.batch_size = 4}}, {.epochs = 1});
  }
  CHECK(t.state().step == 2);
  CHECK(kiln::test::max_abs_diff(frozen, resnet->named_children()[4].value()->parameters()) == 0.0);
  CHECK(kiln::test::max_abs_diff(frozen_stats, resnet->named_children()[1].value()->buffers()) == 0.0);
  CHECK(kiln::test::max_abs_diff(fc_before, resnet->named_children()[9].value()->parameters()) > 0.0);
  fs::remove_all(dir);
}

TEST_CASE("a missing TorchScript file is a clear error") {
  CHECK_THROWS_WITH_AS(kiln::scripted{"/nonexistent/model.pt"},
                       doctest::Contains("kiln::scripted: cannot load TorchScript module '/nonexistent/model.pt'"),
                       std::runtime_error);
}
