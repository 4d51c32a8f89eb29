// kiln::models against torchvision itself (tests/reference/torchvision_models.py): each
// architecture is built by torchvision with a fixed seed and saved with torch.save; kiln reads
// that file, and its eval-mode output, its training-mode output and its output after one SGD
// step equal torchvision's within 1e-5 of the output's scale. The largest variants run when
// KILN_TEST_LARGE_MODELS is set (ctest's models.large, label "large").
//
// Also: the .pth reader's and the loader's errors (a file of another variant, a damaged or
// renamed file, one that is not a zip), and SHA-256 against Python's hashlib.
#include "../reference/reference.hpp"
#include "../support.hpp"

#include <kiln/models/convnext.hpp>
#include <kiln/models/efficientnet.hpp>
#include <kiln/models/mobilenet.hpp>
#include <kiln/models/preprocessing.hpp>
#include <kiln/models/pth.hpp>
#include <kiln/models/resnet.hpp>
#include <kiln/models/stages.hpp>
#include <kiln/models/vgg.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using nlohmann::json;

constexpr std::int64_t classes = 10;
constexpr double lr = 0.01;

bool large_models() {
  const char* v = std::getenv("KILN_TEST_LARGE_MODELS");
  return v != nullptr && *v != '\0' && std::string{v} != "0";
}

torch::Tensor entry(const kiln::models::state_dict& state, const std::string& name) {
  for (const auto& [key, value] : state) {
    if (key == name) return value;
  }
  FAIL("no entry " << name);
  return {};
}

// |a − b| <= 1e-5 · max |b|, element by element.
void check_close(const torch::Tensor& got, const torch::Tensor& expected, const std::string& what) {
  CAPTURE(what);
  REQUIRE(got.sizes() == expected.sizes());
  const double scale = expected.abs().max().item<double>();
  const double worst = (got - expected).abs().max().item<double>();
  CAPTURE(worst);
  CAPTURE(scale);
  CHECK(worst <= 1e-5 * std::max(scale, 1e-12));
}

struct reference_case {
  std::string arch;
  std::vector<std::int64_t> input{2, 3, 64, 64};
};

json run_references(const std::vector<reference_case>& cases, const fs::path& dir) {
  json input = json::array();
  for (const auto& c : cases) {
    input.push_back({{"arch", c.arch}, {"seed", 7}, {"input", c.input}, {"classes", classes}, {"lr", lr}, {"dir", dir.string()}});
  }
  return kiln::test::run_reference("torchvision_models.py", input);
}

// `linear`: the name of the classifier's Linear in torchvision's files.
template <class Model>
void check_model(const json& files, const std::string& arch, const std::string& linear = "fc") {
  CAPTURE(arch);
  const fs::path weights = files.at("weights").get<std::string>();
  const auto expected = kiln::models::read_state_dict(files.at("expected").get<std::string>());
  const auto x = entry(expected, "input");

  Model model{typename Model::options_type{.classifier = true, .classes = classes}};
  kiln::models::load_state_dict(*model, weights);
  model->eval();
  {
    torch::NoGradGuard no_grad;
    check_close(model->forward(x), entry(expected, "eval"), arch + ": eval");
  }
  model->train();
  torch::manual_seed(8);
  const auto trained = model->forward(x);
  check_close(trained.detach(), entry(expected, "train"), arch + ": train");
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(lr));
  optimizer.zero_grad();
  torch::nn::functional::cross_entropy(trained, torch::arange(x.size(0), torch::kLong) % classes).backward();
  optimizer.step();
  model->eval();
  torch::NoGradGuard no_grad;
  check_close(model->forward(x), entry(expected, "after_step"), arch + ": after one SGD step");

  // The backbone: the same file without its classifier; the classifier on its features gives
  // torchvision's logits.
  Model backbone;
  CHECK_FALSE(backbone->has_classifier());
  kiln::models::load_torchvision_weights(backbone, weights);
  backbone->eval();
  const auto features = backbone->forward(x);
  CHECK(features.size(1) == Model::width);
  const auto state = kiln::models::read_state_dict(weights);
  check_close(torch::nn::functional::linear(features, entry(state, linear + ".weight"), entry(state, linear + ".bias")),
              entry(expected, "eval"), arch + ": backbone and classifier");
}

}  // namespace

TEST_CASE("kiln::models' ResNets load torchvision's files and compute torchvision's outputs") {
  const auto dir = kiln::test::fresh_dir("models", "resnet");
  const auto files = run_references({{"resnet18"}, {"resnet34"}, {"resnet50"}, {"resnext50_32x4d"}}, dir);
  check_model<kiln::models::resnet18>(files[0], "resnet18");
  check_model<kiln::models::resnet34>(files[1], "resnet34");
  check_model<kiln::models::resnet50>(files[2], "resnet50");
  check_model<kiln::models::resnext50_32x4d>(files[3], "resnext50_32x4d");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' MobileNets load torchvision's files and compute torchvision's outputs (dropout included)") {
  const auto dir = kiln::test::fresh_dir("models", "mobilenet");
  const auto files = run_references({{"mobilenet_v2"}, {"mobilenet_v3_large"}, {"mobilenet_v3_small"}}, dir);
  check_model<kiln::models::mobilenet_v2>(files[0], "mobilenet_v2", "classifier.1");
  // MobileNetV3: squeeze-and-excitation, hardswish, and a backbone that keeps the hidden Linear.
  check_model<kiln::models::mobilenet_v3_large>(files[1], "mobilenet_v3_large", "classifier.3");
  check_model<kiln::models::mobilenet_v3_small>(files[2], "mobilenet_v3_small", "classifier.3");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' largest ResNets against torchvision (KILN_TEST_LARGE_MODELS)") {
  if (!large_models()) return;
  const auto dir = kiln::test::fresh_dir("models", "resnet_large");
  const auto files = run_references({{"resnet101"}, {"resnet152"}, {"resnext101_32x8d"}, {"resnext101_64x4d"},
                                     {"wide_resnet50_2"}, {"wide_resnet101_2"}},
                                    dir);
  check_model<kiln::models::resnet101>(files[0], "resnet101");
  check_model<kiln::models::resnet152>(files[1], "resnet152");
  check_model<kiln::models::resnext101_32x8d>(files[2], "resnext101_32x8d");
  check_model<kiln::models::resnext101_64x4d>(files[3], "resnext101_64x4d");
  check_model<kiln::models::wide_resnet50_2>(files[4], "wide_resnet50_2");
  check_model<kiln::models::wide_resnet101_2>(files[5], "wide_resnet101_2");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' EfficientNet-B0 equals torchvision's, stochastic depth and dropout drawn alike") {
  const auto dir = kiln::test::fresh_dir("models", "efficientnet");
  const auto files = run_references({{"efficientnet_b0"}}, dir);
  check_model<kiln::models::efficientnet_b0>(files[0], "efficientnet_b0", "classifier.1");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' largest EfficientNets against torchvision (KILN_TEST_LARGE_MODELS)") {
  if (!large_models()) return;
  const auto dir = kiln::test::fresh_dir("models", "efficientnet_large");
  const auto files = run_references({{"efficientnet_b1"}, {"efficientnet_b2"}, {"efficientnet_b3"}, {"efficientnet_b4"},
                                     {"efficientnet_b5"}, {"efficientnet_b6"}, {"efficientnet_b7"}},
                                    dir);
  check_model<kiln::models::efficientnet_b1>(files[0], "efficientnet_b1", "classifier.1");
  check_model<kiln::models::efficientnet_b2>(files[1], "efficientnet_b2", "classifier.1");
  check_model<kiln::models::efficientnet_b3>(files[2], "efficientnet_b3", "classifier.1");
  check_model<kiln::models::efficientnet_b4>(files[3], "efficientnet_b4", "classifier.1");
  check_model<kiln::models::efficientnet_b5>(files[4], "efficientnet_b5", "classifier.1");
  check_model<kiln::models::efficientnet_b6>(files[5], "efficientnet_b6", "classifier.1");
  check_model<kiln::models::efficientnet_b7>(files[6], "efficientnet_b7", "classifier.1");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' ConvNeXt-Tiny equals torchvision's, layer scale and stochastic depth included") {
  const auto dir = kiln::test::fresh_dir("models", "convnext");
  const auto files = run_references({{"convnext_tiny"}}, dir);
  check_model<kiln::models::convnext_tiny>(files[0], "convnext_tiny", "classifier.2");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' largest ConvNeXts against torchvision (KILN_TEST_LARGE_MODELS)") {
  if (!large_models()) return;
  const auto dir = kiln::test::fresh_dir("models", "convnext_large");
  const auto files = run_references({{"convnext_small"}, {"convnext_base"}}, dir);
  check_model<kiln::models::convnext_small>(files[0], "convnext_small", "classifier.2");
  check_model<kiln::models::convnext_base>(files[1], "convnext_base", "classifier.2");
  fs::remove_all(dir);
}

TEST_CASE("kiln::models' largest VGGs against torchvision (KILN_TEST_LARGE_MODELS)") {
  if (!large_models()) return;
  const auto dir = kiln::test::fresh_dir("models", "vgg");
  const auto files = run_references({{"vgg11"}, {"vgg11_bn"}, {"vgg16"}, {"vgg16_bn"}}, dir);
  check_model<kiln::models::vgg11>(files[0], "vgg11", "classifier.6");
  check_model<kiln::models::vgg11_bn>(files[1], "vgg11_bn", "classifier.6");
  check_model<kiln::models::vgg16>(files[2], "vgg16", "classifier.6");
  check_model<kiln::models::vgg16_bn>(files[3], "vgg16_bn", "classifier.6");
  fs::remove_all(dir);
}

TEST_CASE("a weight file that does not fit, is damaged or renamed is refused, naming the problem") {
  const auto dir = kiln::test::fresh_dir("models", "errors");
  const auto files = run_references({{"resnet18"}}, dir);
  const fs::path weights = files[0].at("weights").get<std::string>();

  // Another variant: names and shapes differ.
  kiln::models::resnet34 other{kiln::models::resnet_options{.classifier = true, .classes = classes}};
  CHECK_THROWS_WITH_AS(kiln::models::load_state_dict(*other, weights),
                       doctest::Contains("missing from the file: layer1.2.conv1.weight"), std::runtime_error);
  // Another head: the classifier's shape.
  kiln::models::resnet18 wider{kiln::models::resnet_options{.classifier = true, .classes = 1000}};
  CHECK_THROWS_WITH_AS(kiln::models::load_state_dict(*wider, weights),
                       doctest::Contains("fc.weight is [10, 512] in the file and [1000, 512] in the module"), std::runtime_error);
  // A backbone loaded without leaving out the classifier.
  kiln::models::resnet18 backbone;
  CHECK_THROWS_WITH_AS(kiln::models::load_state_dict(*backbone, weights),
                       doctest::Contains("in the file but not in the module: fc.bias, fc.weight"), std::runtime_error);

  // torch.hub's name check: the digest's prefix in the name.
  const auto digest = kiln::detail::sha256_of_file(weights);
  const auto named = dir / ("resnet18-" + digest.substr(0, 8) + ".pth");
  fs::copy_file(weights, named);
  CHECK(kiln::models::hash_prefix_of(named) == digest.substr(0, 8));
  kiln::models::resnet18 good{kiln::models::resnet_options{.classifier = true, .classes = classes}};
  kiln::models::load_state_dict(*good, named);
  const auto misnamed = dir / "resnet18-0123abcd.pth";
  fs::copy_file(weights, misnamed);
  CHECK_THROWS_WITH_AS(kiln::models::load_state_dict(*good, misnamed),
                       doctest::Contains("but its name says it begins with 0123abcd: the file is damaged"), std::runtime_error);
  kiln::models::load_state_dict(*good, misnamed, {.check_hash = false});

  // A truncated file and one that is not an archive.
  const auto truncated = dir / "truncated.pth";
  {
    std::ifstream in(weights, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    std::ofstream(dir / "text.pth") << "not a zip archive";
  }
  CHECK_THROWS_WITH_AS(kiln::models::read_state_dict(truncated), doctest::Contains("read_state_dict('"), std::runtime_error);
  CHECK_THROWS_WITH_AS(kiln::models::read_state_dict(dir / "text.pth"), doctest::Contains("not a zip archive of torch.save"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(kiln::models::read_state_dict(dir / "missing.pth"), doctest::Contains("no such file"), std::runtime_error);

  // SHA-256 against hashlib, on files of lengths around the block boundaries.
  json cases = json::array();
  for (const std::size_t length : {0, 1, 55, 56, 63, 64, 65, 1000, 1 << 20, (1 << 20) + 7}) {
    const auto path = dir / ("bytes" + std::to_string(length));
    std::string bytes(length, '\0');
    for (std::size_t i = 0; i < length; ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 251);
    std::ofstream(path, std::ios::binary) << bytes;
    cases.push_back(path.string());
  }
  const auto digests = kiln::test::run_reference("sha256.py", cases);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(cases[i]);
    CHECK(kiln::detail::sha256_of_file(cases[i].get<std::string>()) == digests[i].get<std::string>());
  }
  fs::remove_all(dir);
}

TEST_CASE("the preprocessing of a published weight set is torchvision's weights.transforms()") {
  const auto dir = kiln::test::fresh_dir("models", "preprocessing");
  auto gen = at::detail::createCPUGenerator(3);
  struct one {
    std::string file, weights;
    torch::Tensor images;
  };
  const std::vector<one> cases{
      {"resnet50-11ad3fa6.pth", "ResNet50_Weights.IMAGENET1K_V2", torch::randint(0, 256, {2, 3, 240, 300}, gen, torch::kByte)},
      {"resnet18-f37072fd.pth", "ResNet18_Weights.IMAGENET1K_V1", torch::rand({1, 3, 300, 260}, gen)},
      {"resnext101_64x4d-173b62eb.pth", "ResNeXt101_64X4D_Weights.IMAGENET1K_V1", torch::randint(0, 256, {1, 3, 230, 230}, gen, torch::kByte)}};
  json input = json::array();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto as_double = c.images.to(torch::kDouble).contiguous();
    const auto* v = as_double.data_ptr<double>();
    json images = json::array();
    for (std::int64_t n = 0; n < c.images.size(0); ++n) {
      json image = json::array();
      for (std::int64_t ch = 0; ch < 3; ++ch) {
        json rows = json::array();
        for (std::int64_t y = 0; y < c.images.size(2); ++y) {
          const auto* row = v + ((n * 3 + ch) * c.images.size(2) + y) * c.images.size(3);
          rows.push_back(c.images.scalar_type() == torch::kByte ? json(std::vector<int>(row, row + c.images.size(3)))
                                                                : json(std::vector<double>(row, row + c.images.size(3))));
        }
        image.push_back(std::move(rows));
      }
      images.push_back(std::move(image));
    }
    input.push_back({{"weights", c.weights}, {"images", std::move(images)},
                     {"dtype", c.images.scalar_type() == torch::kByte ? "uint8" : "float32"},
                     {"out", (dir / ("out" + std::to_string(i) + ".pth")).string()}});
  }
  const auto sizes = kiln::test::run_reference("torchvision_preprocessing.py", input);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(cases[i].file);
    const auto& preprocessing = kiln::models::published(cases[i].file).preprocessing;
    CHECK(preprocessing.resize == sizes[i].at("resize").get<std::int64_t>());
    CHECK(preprocessing.crop == sizes[i].at("crop").get<std::int64_t>());
    const auto expected = entry(kiln::models::read_state_dict(input[i].at("out").get<std::string>()), "out");
    const auto got = preprocessing(cases[i].images);
    REQUIRE(got.sizes() == expected.sizes());
    CHECK((got - expected).abs().max().item<double>() <= 1e-5);
  }
  CHECK_THROWS_WITH_AS(kiln::models::published("resnet50.pth"), doctest::Contains("is not one of torchvision 0.14's weight files"),
                       std::invalid_argument);
  fs::remove_all(dir);
}

TEST_CASE("freeze_through freezes a torchvision architecture through a stage named as torchvision names it") {
  static_assert(kiln::models::freeze_through<kiln::models::resnet18, "layer2">::children == 6);
  static_assert(kiln::models::freeze_through<kiln::models::resnet50, "conv1">::children == 1);
  static_assert(kiln::models::freeze_through<kiln::models::wide_resnet50_2, "avgpool">::children == 9);
  torch::manual_seed(1);
  kiln::trainer t{kiln::backbone<kiln::models::resnet18>{}, kiln::models::freeze_through<kiln::models::resnet18, "layer2">{},
                  kiln::head{torch::nn::Linear(kiln::models::resnet18::width, 3)}, kiln::sgd{.lr = 0.1}};
  auto frozen_stage = [](const std::string& name) {
    return name.starts_with("conv1.") || name.starts_with("bn1.") || name.starts_with("layer1.") || name.starts_with("layer2.");
  };
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : t.backbone()->named_parameters()) {
    CAPTURE(p.key());
    CHECK(p.value().requires_grad() == !frozen_stage(p.key()));
    before.emplace(p.key(), p.value().clone());
  }
  auto gen = at::detail::createCPUGenerator(2);
  kiln::data::tensor_batches data{torch::randn({8, 3, 32, 32}, gen), torch::randint(0, 3, {8}, gen, torch::kLong), {.batch_size = 4}};
  t.fit(data, {.epochs = 1});
  for (const auto& p : t.backbone()->named_parameters()) {
    CAPTURE(p.key());
    CHECK(torch::equal(p.value(), before.at(p.key())) == frozen_stage(p.key()));
  }
}
