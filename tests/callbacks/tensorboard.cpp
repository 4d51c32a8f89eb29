// The event file is checked against decoders that share nothing with kiln's writer: a bitwise
// CRC-32C written here from its definition (checked on the published test vectors first), and
// protoc --decode_raw (Debian's protobuf-compiler) for every record's payload.
#include "loggers.hpp"

#include <kiln/callbacks/tensorboard.hpp>

#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace kiln::test;

static_assert(kiln::Callback<kiln::tensorboard_logger>);

namespace {

// CRC-32C one bit at a time, straight from the definition: reflected polynomial 0x82F63B78.
std::uint32_t bitwise_crc32c(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char byte : bytes) {
    crc ^= static_cast<unsigned char>(byte);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::uint32_t masked(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::uint64_t little_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// One node of protoc --decode_raw's output: `field: value` or `field { ... }`.
struct node {
  std::string field;
  std::string value;  // as printed: 42, 0x3f000000, "text" (C-escaped, quotes kept)
  std::vector<node> children;

  [[nodiscard]] std::vector<const node*> all(std::string_view name) const {
    std::vector<const node*> found;
    for (const auto& child : children) {
      if (child.field == name) found.push_back(&child);
    }
    return found;
  }
  [[nodiscard]] const node& one(std::string_view name) const {
    const auto found = all(name);
    REQUIRE_MESSAGE(found.size() == 1, "field ", name, " appears ", found.size(), " times");
    return *found.front();
  }
};

node parse_decode_raw(const std::string& text) {
  node root;
  std::vector<node*> open{&root};
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    line.erase(0, start);
    if (line == "}") {
      open.pop_back();
    } else if (line.ends_with(" {")) {
      open.back()->children.push_back({line.substr(0, line.size() - 2), "", {}});
      open.push_back(&open.back()->children.back());
    } else {
      const auto colon = line.find(": ");
      REQUIRE(colon != std::string::npos);
      open.back()->children.push_back({line.substr(0, colon), line.substr(colon + 2), {}});
    }
  }
  REQUIRE(open.size() == 1);
  return root;
}

node decode(const fs::path& dir, const std::string& payload, int index) {
  const auto file = dir / ("payload_" + std::to_string(index) + ".bin");
  std::ofstream(file, std::ios::binary) << payload;
  const auto [status, output] = run_command("protoc --decode_raw < '" + file.string() + "' 2>&1");
  INFO("protoc --decode_raw said:\n", output);
  REQUIRE_MESSAGE(status == 0, "protoc failed on record ", index,
                  " (is Debian's protobuf-compiler installed? scripts/setup.sh installs it)");
  return parse_decode_raw(output);
}

std::string in_quotes(std::string_view text) {
  std::string out = "\"";  // not "\"" + std::string{text}: GCC 12 warns falsely (-Wstringop-overflow)
  out += text;
  return out += '"';
}

double as_double(const std::string& hex) { return std::bit_cast<double>(std::stoull(hex, nullptr, 16)); }
float as_float(const std::string& hex) { return std::bit_cast<float>(static_cast<std::uint32_t>(std::stoul(hex, nullptr, 16))); }

}  // namespace

TEST_CASE("CRC-32C matches the published test vectors and a bitwise CRC") {
  CHECK(bitwise_crc32c("123456789") == 0xE3069283u);  // the check value of CRC-32C
  CHECK(kiln::detail::crc32c("123456789") == 0xE3069283u);
  CHECK(kiln::detail::crc32c("") == 0u);
  // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, of ones, ascending.
  CHECK(kiln::detail::crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(kiln::detail::crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending += static_cast<char>(i);
  CHECK(kiln::detail::crc32c(ascending) == 0x46DD794Eu);
  std::string bytes;
  for (int i = 0; i < 1000; ++i) {
    bytes += static_cast<char>((i * 131 + 7) % 256);
    CHECK(kiln::detail::crc32c(bytes) == bitwise_crc32c(bytes));
  }
  CHECK(kiln::detail::masked_crc32c("123456789") == masked(0xE3069283u));
}

TEST_CASE("kiln::tensorboard_logger writes records that protoc decodes into the expected events") {
  const scratch_directory dir{"tensorboard"};
  const auto log_dir = dir.path / "runs" / "toy";
  const double started = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::vector<std::vector<double>> matrix{{20, 1, 0}, {2, 18, 3}, {0, 4, 16}};
  const auto history =
      short_fit(inject_confusion_matrix{matrix},
                kiln::tensorboard_logger{.log_dir = log_dir, .hyperparameters = {{"lr", "0.1"}, {"optimizer", "sgd"}}});
  const double finished = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

  // One file, named as TensorFlow names them.
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(log_dir)) files.push_back(entry.path());
  REQUIRE(files.size() == 1);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const auto name = files[0].filename().string();
  CHECK(name.starts_with("events.out.tfevents."));
  CHECK(name.ends_with("." + std::string{host}));

  // Framing: length, masked CRC of the length, payload, masked CRC of the payload.
  const auto bytes = read_file(files[0]);
  std::vector<std::string> payloads;
  for (std::size_t at = 0; at < bytes.size();) {
    CAPTURE(payloads.size());
    REQUIRE(at + 12 <= bytes.size());
    const std::string_view length_bytes(bytes.data() + at, 8);
    const auto length = little_endian(length_bytes);
    CHECK(little_endian({bytes.data() + at + 8, 4}) == masked(bitwise_crc32c(length_bytes)));
    REQUIRE(at + 12 + length + 4 <= bytes.size());
    const std::string_view payload(bytes.data() + at + 12, length);
    CHECK(little_endian({bytes.data() + at + 12 + length, 4}) == masked(bitwise_crc32c(payload)));
    payloads.emplace_back(payload);
    at += 12 + length + 4;
  }
  REQUIRE(payloads.size() == 2 + epochs);  // file version, hyperparameters, one per epoch

  // 1. Event{wall_time, step 0, file_version}.
  const auto version = decode(dir.path, payloads[0], 0);
  CHECK(version.one("3").value == in_quotes("brain.Event:2"));
  CHECK(version.one("2").value == "0");
  const double wall_time = as_double(version.one("1").value);
  CHECK(wall_time >= std::floor(started));
  CHECK(wall_time <= finished);

  // 2. The hyperparameters as a text summary: Value{tag, tensor{DT_STRING, [1], markdown}, plugin "text"}.
  const auto hparams = decode(dir.path, payloads[1], 1);
  CHECK(hparams.one("2").value == "0");
  const auto& text = hparams.one("5").one("1");
  CHECK(text.one("1").value == in_quotes("hyperparameters"));
  const auto& tensor = text.one("8");
  CHECK(tensor.one("1").value == "7");                        // dtype DT_STRING
  CHECK(tensor.one("2").one("2").one("1").value == "1");      // shape [1]
  CHECK(tensor.one("8").value.find("| lr | 0.1 |") != std::string::npos);
  CHECK(tensor.one("8").value.find("| optimizer | sgd |") != std::string::npos);
  CHECK(text.one("9").one("1").one("1").value == in_quotes("text"));  // metadata.plugin_data.plugin_name

  // 3. Per epoch: Event{wall_time, step, Summary{a scalar per value, the matrix as text}}.
  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    CAPTURE(epoch);
    const auto event = decode(dir.path, payloads[static_cast<std::size_t>(epoch) + 2], static_cast<int>(epoch) + 2);
    CHECK(event.one("2").value == std::to_string(steps_per_epoch * (epoch + 1)));
    CHECK(as_double(event.one("1").value) >= wall_time);
    std::vector<std::pair<std::string, double>> expected{{"train/loss", 0}, {"val/loss", 0}, {"val/accuracy", 0}};
    for (auto& [tag, value] : expected) value = history[static_cast<std::size_t>(epoch)].at(tag);
    expected.emplace_back("lr/group_0", backbone_lr(epoch));
    expected.emplace_back("lr/group_1", head_lr(epoch));
    const auto values = event.one("5").all("1");
    REQUIRE(values.size() == expected.size() + 1);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CAPTURE(expected[i].first);
      CHECK(values[i]->one("1").value == in_quotes(expected[i].first));
      CHECK(as_float(values[i]->one("2").value) == static_cast<float>(expected[i].second));  // float32, as TensorBoard's
    }
    const auto& confusion = *values.back();
    CHECK(confusion.one("1").value == in_quotes("val/confusion_matrix"));
    const auto markdown = confusion.one("8").one("8").value;
    CHECK(markdown.find("| 0 | 20 | 1 | 0 |") != std::string::npos);
    CHECK(markdown.find("| 1 | 2 | 18 | 3 |") != std::string::npos);
    CHECK(markdown.find("| 2 | 0 | 4 | 16 |") != std::string::npos);
  }
}

TEST_CASE("kiln::tensorboard_logger gives every run its own file, even in the same second") {
  const scratch_directory dir{"tensorboard_two"};
  manual_context m;
  kiln::tensorboard_logger first{.log_dir = dir.path}, second{.log_dir = dir.path};
  first.on_fit_begin(m.ctx);
  second.on_fit_begin(m.ctx);
  CHECK(first.event_file() != second.event_file());
  CHECK(fs::file_size(first.event_file()) == fs::file_size(second.event_file()));  // a version record each
  kiln::tensorboard_logger nowhere{.log_dir = ""};
  CHECK_THROWS_AS(nowhere.on_fit_begin(m.ctx), std::invalid_argument);
}
