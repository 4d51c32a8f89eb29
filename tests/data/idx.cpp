#include "../support.hpp"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {
fs::path write_bytes(const std::string& name, const std::vector<unsigned char>& bytes) {
  auto path = fs::temp_directory_path() / ("kiln_idx_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}
std::string error_of(const fs::path& path) {
  try {
    kiln::data::read_idx(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("read_idx reads the shape from the header and the bytes after it") {
  auto path = write_bytes("ok", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 10, 20, 30, 40, 50, 255});
  auto t = kiln::data::read_idx(path);
  CHECK(t.sizes() == torch::IntArrayRef{2, 1, 3});
  CHECK(t.dtype() == torch::kUInt8);
  CHECK(t.flatten()[5].item<int>() == 255);
  CHECK(t.flatten()[1].item<int>() == 20);
  fs::remove(path);
}

TEST_CASE("read_idx rejects damaged files with the reason") {
  auto truncated = write_bytes("truncated", {0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3});
  CHECK(error_of(truncated).find("the header promises 5 bytes of data but the file holds 3") != std::string::npos);
  auto magic = write_bytes("magic", {1, 2, 8, 1, 0, 0, 0, 1, 7});
  CHECK(error_of(magic).find("not an IDX file") != std::string::npos);
  auto floats = write_bytes("floats", {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK(error_of(floats).find("element type 0xd is not supported") != std::string::npos);
  auto empty = write_bytes("empty", {0, 0});
  CHECK(error_of(empty).find("too short") != std::string::npos);
  auto header = write_bytes("header", {0, 0, 8, 3, 0, 0, 0, 1});
  CHECK(error_of(header).find("the header is truncated") != std::string::npos);
  CHECK(error_of("/nonexistent/idx").find("cannot open the file") != std::string::npos);
  for (const auto& p : {truncated, magic, floats, empty, header}) fs::remove(p);
}

TEST_CASE("read_idx: sizes whose product wraps around 2^64 are refused, not allocated") {
  // Found by fuzz/idx.cpp in 15 s: 2^16 × 2^24 × 2^27 = 2^67, which a 64-bit count wraps to 0,
  // so that this header with no data after it matched its "0 bytes", and LibTorch was asked
  // for a [65536, 16777216, 134217728] tensor.
  auto wraps = write_bytes("wraps", {0, 0, 8, 3, 0, 1, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0});
  CHECK(error_of(wraps).find("the header's sizes 65536 x 16777216 x 134217728 are implausibly large") !=
        std::string::npos);
  auto huge = write_bytes("huge", {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  CHECK(error_of(huge).find("implausibly large") != std::string::npos);
  // A size of 0 is an empty set, not an error.
  auto empty_set = write_bytes("empty_set", {0, 0, 8, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28});
  CHECK(kiln::data::read_idx(empty_set).sizes() == torch::IntArrayRef{0, 4294967295, 28});
  auto longer = write_bytes("longer", {0, 0, 8, 1, 0, 0, 0, 1, 7, 8});
  CHECK(error_of(longer).find("the header promises 1 bytes of data but the file holds 2") != std::string::npos);
  for (const auto& p : {wraps, huge, empty_set, longer}) fs::remove(p);
}

TEST_CASE("mnist: images and labels that do not match are named with both shapes") {
  const auto root = fs::temp_directory_path() / ("kiln_mnist_" + std::to_string(::getpid()));
  fs::create_directories(root);
  auto write = [&](const std::string& name, const std::vector<unsigned char>& bytes) {
    std::ofstream(root / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  // Three 2×2 images, two labels.
  write("t10k-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  write("t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 1, 0});
  const auto message = kiln::test::message_of([&] { kiln::data::mnist(root, kiln::data::split::test); });
  CHECK(message == "kiln::data::mnist('" + root.string() +
                       "'): t10k images [3, 2, 2] and labels [2] do not match; expected [N, H, W] and [N]");
  // Images stored as one flat dimension are not images.
  write("t10k-images-idx3-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2});
  CHECK(kiln::test::message_of([&] { kiln::data::mnist(root, kiln::data::split::test); })
            .find("t10k images [2] and labels [2] do not match") != std::string::npos);
  fs::remove_all(root);
}

TEST_CASE("the prepared MNIST split reads as 8000 + 2000 real digits") {
  const fs::path root = KILN_TEST_DATA_DIR "/mnist";
  REQUIRE_MESSAGE(fs::exists(root / "train-images-idx3-ubyte"), "run scripts/setup.sh to prepare the data");
  auto train = kiln::data::mnist(root, kiln::data::split::train);
  auto test = kiln::data::mnist(root, kiln::data::split::test);
  CHECK(train.images.sizes() == torch::IntArrayRef{8000, 1, 28, 28});
  CHECK(test.images.sizes() == torch::IntArrayRef{2000, 1, 28, 28});
  CHECK(train.images.max().item<float>() == 1.0f);
  CHECK(train.images.min().item<float>() == 0.0f);
  CHECK(torch::bincount(test.labels).eq(200).all().item<bool>());
  auto high = kiln::data::select_classes(test, {5, 6, 7, 8, 9});
  CHECK(high.labels.size(0) == 1000);
  CHECK(high.labels.min().item<std::int64_t>() == 0);
  CHECK(high.labels.max().item<std::int64_t>() == 4);
}
