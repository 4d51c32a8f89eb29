// Fuzzes the reading of a checkpoint's (or weights file's) seal, kiln::detail::open_envelope
// (kiln/detail/seal.hpp): everything kiln reads of such a file before LibTorch sees its bytes.
// Each input is opened as a whole file, then sealed as a payload and opened again, whole and
// with one bit changed.
#include "fuzz.hpp"

#include <kiln/detail/seal.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using kiln::detail::envelope_kind;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto opened = kiln::detail::open_envelope(bytes);
  switch (opened.kind) {
    case envelope_kind::sealed: {
      kiln::fuzz::require(opened.payload_size + kiln::detail::seal_size == size, "the seal ends the file");
      const auto payload = bytes.substr(0, opened.payload_size);
      kiln::fuzz::require(kiln::detail::make_seal(payload.size(), kiln::detail::checksum_of(payload)) ==
                              bytes.substr(opened.payload_size),
                          "the seal is the payload's");
      break;
    }
    case envelope_kind::unsealed:
      kiln::fuzz::require(opened.payload_size == size && kiln::detail::ends_like_zip(bytes), "a whole zip archive");
      break;
    case envelope_kind::damaged:
      kiln::fuzz::require(opened.payload_size == 0 && opened.problem.find("corrupt") != std::string::npos,
                          "damage is reported as such");
      break;
  }

  std::string file{bytes};
  file += kiln::detail::make_seal(size, kiln::detail::checksum_of(bytes));
  const auto sealed = kiln::detail::open_envelope(file);
  kiln::fuzz::require(sealed.kind == envelope_kind::sealed && sealed.payload_size == size, "a sealed input opens");
  const std::size_t bit = size == 0 ? 0 : (data[0] * 131u + size) % (8 * file.size());
  file[bit / 8] = static_cast<char>(file[bit / 8] ^ (1 << (bit % 8)));
  // A changed bit is found; the one exception, a bit of "KILNSEAL" in an input that is a zip
  // archive whose comment runs to the file's end, is a whole zip archive without a seal.
  const bool in_magic = bit / 8 >= size && bit / 8 < size + kiln::detail::seal_magic.size();
  kiln::fuzz::require(kiln::detail::open_envelope(file).kind == envelope_kind::damaged ||
                          (in_magic && kiln::detail::ends_like_zip(file)),
                      "a changed bit is found");
  return 0;
}
