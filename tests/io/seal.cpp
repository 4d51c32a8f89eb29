// The seal that ends checkpoints and weights files (kiln/detail/seal.hpp).
#include <kiln/detail/seal.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>

namespace {
std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen{seed};
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

std::string sealed(const std::string& payload) {
  return payload + kiln::detail::make_seal(payload.size(), kiln::detail::checksum_of(payload));
}
}  // namespace

TEST_CASE("the checksum of bytes does not depend on how they are split") {
  const std::string bytes = random_bytes(1000, 1);
  kiln::detail::checksum whole;
  whole.update(bytes.data(), bytes.size());
  std::mt19937 gen{2};
  for (int trial = 0; trial < 50; ++trial) {
    kiln::detail::checksum pieces;
    for (std::size_t at = 0; at < bytes.size();) {
      const std::size_t n = std::min<std::size_t>(gen() % 20, bytes.size() - at);
      pieces.update(bytes.data() + at, n);
      at += n;
    }
    CHECK(pieces.value() == whole.value());
  }
  kiln::detail::checksum longer;  // a trailing zero byte is a different content
  longer.update((bytes + '\0').data(), bytes.size() + 1);
  CHECK(longer.value() != whole.value());
}

TEST_CASE("a sealed file opens; every one-bit change, truncation or extension is found") {
  const std::string payload = random_bytes(150, 3), file = sealed(payload);
  const auto good = kiln::detail::open_envelope(file);
  REQUIRE(good.kind == kiln::detail::envelope_kind::sealed);
  CHECK(good.payload_size == payload.size());
  for (std::size_t bit = 0; bit < 8 * file.size(); ++bit) {
    std::string damaged = file;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    const auto e = kiln::detail::open_envelope(damaged);
    CAPTURE(bit);
    CHECK(e.kind == kiln::detail::envelope_kind::damaged);
    CHECK(e.problem.find("corrupt") != std::string::npos);
  }
  for (std::size_t keep = 0; keep < file.size(); ++keep) {
    CAPTURE(keep);
    CHECK(kiln::detail::open_envelope(file.substr(0, keep)).kind == kiln::detail::envelope_kind::damaged);
  }
  CHECK(kiln::detail::open_envelope(file + "x").kind == kiln::detail::envelope_kind::damaged);
  const auto shifted = kiln::detail::open_envelope("x" + file);
  CHECK(shifted.problem == "truncated or corrupt: its seal is for 150 bytes, but 151 precede it");
}

TEST_CASE("an unsealed file is accepted only where a zip archive ends") {
  // The end-of-central-directory record: signature, 16 bytes of counts and offsets, comment length.
  const auto end_record = [](const std::string& comment) {
    std::string r = "PK\x05\x06" + std::string(16, '\0');
    r += static_cast<char>(comment.size() & 0xff);
    r += static_cast<char>(comment.size() >> 8);
    return r + comment;
  };
  using kiln::detail::envelope_kind;
  CHECK(kiln::detail::open_envelope(random_bytes(40, 4) + end_record("")).kind == envelope_kind::unsealed);
  CHECK(kiln::detail::open_envelope(end_record("a comment")).kind == envelope_kind::unsealed);
  CHECK(kiln::detail::open_envelope(end_record("a comment") + "x").kind == envelope_kind::damaged);
  CHECK(kiln::detail::open_envelope(end_record("").substr(0, 21)).kind == envelope_kind::damaged);
  CHECK(kiln::detail::open_envelope("").problem ==
        "not a LibTorch archive, or truncated or corrupt: it ends neither with kiln's seal nor as a zip archive does (0 bytes)");
}
