// kiln/detail/sha256.hpp — SHA-256 (FIPS 180-4) of a file, as hex: what torch.hub checks a
// downloaded weight file's name against. Written here (some 60 lines) rather than taken from
// OpenSSL, so that kiln's headers need no library beyond LibTorch; tests/models/pth.cpp checks it
// against Python's hashlib.
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::detail {

/// The SHA-256 of `path`'s bytes, 64 lowercase hex digits.
KILN_DECL std::string sha256_of_file(const std::filesystem::path& path);

}  // namespace kiln::detail

#if KILN_FUNCTION_DEFINITIONS

#include <cstdio>
#include <fstream>
#include <vector>

namespace kiln::detail {

namespace sha256_impl {
constexpr std::array<std::uint32_t, 64> k{
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t rotate(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline void compress(std::array<std::uint32_t, 8>& h, const unsigned char* block) {
  std::array<std::uint32_t, 64> w{};
  for (int i = 0; i < 16; ++i) {
    w[i] = (std::uint32_t{block[4 * i]} << 24) | (std::uint32_t{block[4 * i + 1]} << 16) |
           (std::uint32_t{block[4 * i + 2]} << 8) | std::uint32_t{block[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const auto s0 = rotate(w[i - 15], 7) ^ rotate(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const auto s1 = rotate(w[i - 2], 17) ^ rotate(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  auto [a, b, c, d, e, f, g, hh] = h;
  for (int i = 0; i < 64; ++i) {
    const auto t1 = hh + (rotate(e, 6) ^ rotate(e, 11) ^ rotate(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
    const auto t2 = (rotate(a, 2) ^ rotate(a, 13) ^ rotate(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}
}  // namespace sha256_impl

KILN_DECL std::string sha256_of_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_runtime_error(concat("kiln: cannot read '", path.string(), "'"), "it is missing or unreadable");
  std::array<std::uint32_t, 8> h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::vector<unsigned char> buffer(1 << 20);
  std::uint64_t length = 0;
  std::size_t held = 0;  // bytes of an unfinished block at the start of buffer
  while (in) {
    in.read(reinterpret_cast<char*>(buffer.data() + held), static_cast<std::streamsize>(buffer.size() - held));
    const auto got = static_cast<std::size_t>(in.gcount());
    length += got;
    held += got;
    std::size_t done = 0;
    for (; done + 64 <= held; done += 64) sha256_impl::compress(h, buffer.data() + done);
    std::copy(buffer.begin() + static_cast<std::ptrdiff_t>(done), buffer.begin() + static_cast<std::ptrdiff_t>(held),
              buffer.begin());
    held -= done;
  }
  // Padding: 0x80, zeros, the length in bits (big-endian), to a multiple of 64 bytes.
  std::vector<unsigned char> tail(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(held));
  tail.push_back(0x80);
  while (tail.size() % 64 != 56) tail.push_back(0);
  const std::uint64_t bits = length * 8;
  for (int i = 7; i >= 0; --i) tail.push_back(static_cast<unsigned char>(bits >> (8 * i)));
  for (std::size_t done = 0; done < tail.size(); done += 64) sha256_impl::compress(h, tail.data() + done);
  std::string hex;
  for (const auto word : h) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", word);
    hex += part;
  }
  return hex;
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
