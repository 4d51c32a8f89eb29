// kiln/detail/seal.hpp — a checksum at the end of the files kiln writes, so that damage is found.
//
// LibTorch's archive reader does not verify the zip's checksums: a checkpoint with a few
// flipped bytes in a tensor loads without complaint, and its numbers are silently wrong. kiln
// therefore ends each checkpoint and weights file with a 24-byte seal:
//
//   "KILNSEAL"   8 bytes
//   length       the bytes before the seal, 64-bit little-endian
//   checksum     a 64-bit checksum of those bytes, little-endian
//
// Readers that know nothing of it (torch.load, torch::load) ignore bytes after the zip's end.
// This header has no LibTorch in it: the fuzz target fuzz/checkpoint.cpp runs on it.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace kiln::detail {

/// A 64-bit checksum of a byte stream fed in pieces of any size; the same bytes give the same
/// value however they are split. Any change of one 8-byte word changes the value, and other
/// damage is missed with a probability of about 2^-64. Not a cryptographic hash.
class checksum {
 public:
  void update(const void* data, std::size_t size) noexcept {
    const auto* bytes = static_cast<const unsigned char*>(data);
    length_ += size;
    while (size > 0 && pending_size_ > 0) {  // finish the word a previous piece began
      pending_[pending_size_++] = *bytes++;
      --size;
      if (pending_size_ == 8) {
        state_ = mix(state_, load(pending_.data()));
        pending_size_ = 0;
      }
    }
    for (; size >= 8; size -= 8, bytes += 8) state_ = mix(state_, load(bytes));
    for (; size > 0; --size) pending_[pending_size_++] = *bytes++;
  }

  /// The number of bytes fed so far.
  [[nodiscard]] std::uint64_t size() const noexcept { return length_; }

  [[nodiscard]] std::uint64_t value() const noexcept {
    std::uint64_t h = state_;
    if (pending_size_ > 0) {
      std::array<unsigned char, 8> last{};
      std::memcpy(last.data(), pending_.data(), pending_size_);
      h = mix(h, load(last.data()));
    }
    h ^= length_;  // a word of zeros more or less changes the value
    h ^= h >> 33;  // a final avalanche, so that nearby inputs give unrelated values
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
  }

 private:
  // Both steps are bijections (of w, then of h), so that one changed word always changes h.
  static std::uint64_t mix(std::uint64_t h, std::uint64_t w) noexcept {
    w *= 0x87c37b91114253d5ULL;
    w = std::rotl(w, 31);
    w *= 0x4cf5ad432745937fULL;
    h ^= w;
    return std::rotl(h, 27) * 5 + 0x52dce729;
  }
  static std::uint64_t load(const unsigned char* p) noexcept {
    std::uint64_t w = 0;
    for (int i = 7; i >= 0; --i) w = (w << 8) | p[i];  // little-endian on every machine
    return w;
  }

  std::uint64_t state_ = 0x9e3779b97f4a7c15ULL;
  std::uint64_t length_ = 0;
  std::array<unsigned char, 8> pending_{};
  std::size_t pending_size_ = 0;
};

/// The checksum of bytes held in memory.
KILN_DECL std::uint64_t checksum_of(std::string_view bytes) noexcept;

inline constexpr std::string_view seal_magic = "KILNSEAL";
inline constexpr std::size_t seal_size = 24;

/// The seal of `length` bytes whose checksum is `sum`.
KILN_DECL std::string make_seal(std::uint64_t length, std::uint64_t sum);

/// What the end of a file says about it.
enum class envelope_kind {
  sealed,    // a seal whose length and checksum match the bytes before it
  unsealed,  // no seal, but the file ends where a zip archive ends: written by another tool
  damaged,   // truncated or corrupt; `problem` says how
};

struct envelope {
  envelope_kind kind = envelope_kind::damaged;
  std::size_t payload_size = 0;  // the bytes that hold the archive
  std::string problem;           // for damaged: what is wrong, as a clause ("its checksum ...")
};

// Whether `bytes` ends with a zip end-of-central-directory record (signature PK\5\6, 22 bytes
// and a comment whose length it gives): the end of a complete zip archive.
KILN_DECL bool ends_like_zip(std::string_view bytes);

/// Reads the seal at the end of `bytes` (a whole file) and checks it.
KILN_DECL envelope open_envelope(std::string_view bytes);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::uint64_t checksum_of(std::string_view bytes) noexcept {
  checksum sum;
  sum.update(bytes.data(), bytes.size());
  return sum.value();
}

KILN_DECL std::string make_seal(std::uint64_t length, std::uint64_t sum) {
  std::string seal{seal_magic};
  for (const std::uint64_t field : {length, sum}) {
    for (int i = 0; i < 8; ++i) seal.push_back(static_cast<char>((field >> (8 * i)) & 0xff));
  }
  return seal;
}

KILN_DECL bool ends_like_zip(std::string_view bytes) {
  constexpr std::size_t record = 22, max_comment = 0xffff;
  if (bytes.size() < record) return false;
  const std::size_t lowest = bytes.size() > record + max_comment ? bytes.size() - record - max_comment : 0;
  for (std::size_t at = bytes.size() - record + 1; at-- > lowest;) {
    if (bytes.compare(at, 4, "PK\x05\x06") != 0) continue;
    const auto comment = static_cast<std::size_t>(static_cast<unsigned char>(bytes[at + 20])) |
                         static_cast<std::size_t>(static_cast<unsigned char>(bytes[at + 21])) << 8;
    if (at + record + comment == bytes.size()) return true;
  }
  return false;
}

KILN_DECL envelope open_envelope(std::string_view bytes) {
  const auto field = [&](std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
    return v;
  };
  if (bytes.size() < seal_size || bytes.substr(bytes.size() - seal_size, seal_magic.size()) != seal_magic) {
    if (ends_like_zip(bytes)) return {envelope_kind::unsealed, bytes.size(), {}};
    return {envelope_kind::damaged, 0,
            concat("not a LibTorch archive, or truncated or corrupt: it ends neither with kiln's seal nor as a "
                   "zip archive does (",
                   bytes.size(), " bytes)")};
  }
  const std::size_t payload = bytes.size() - seal_size;
  const std::uint64_t length = field(payload + 8), sum = field(payload + 16);
  if (length != payload) {
    return {envelope_kind::damaged, 0,
            concat("truncated or corrupt: its seal is for ", length, " bytes, but ", payload, " precede it")};
  }
  if (checksum_of(bytes.substr(0, payload)) != sum) {
    return {envelope_kind::damaged, 0,
            "corrupt: its checksum does not match its content (the file was damaged after it was written)"};
  }
  return {envelope_kind::sealed, payload, {}};
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
