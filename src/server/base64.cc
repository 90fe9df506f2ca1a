#include "server/base64.h"

#include <fmt/format.h>

#include <array>

namespace ug::server {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[uint8_t(kAlphabet[i])] = int8_t(i);
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

size_t base64_decoded_size(std::string_view text) {
  return text.size() / 4 * 3 + (text.size() % 4) * 3 / 4;
}

std::optional<std::vector<uint8_t>> base64_decode(std::string_view text, std::string& error) {
  size_t n = text.size();
  size_t pad = 0;
  while (n > 0 && text[n - 1] == '=' && pad < 2) --n, ++pad;
  if (pad && (n + pad) % 4 != 0) {
    error = "bad padding";
    return std::nullopt;
  }
  if (n % 4 == 1) {
    error = fmt::format("truncated data ({} characters)", text.size());
    return std::nullopt;
  }
  std::vector<uint8_t> out;
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    int8_t v = kTable[uint8_t(text[i])];
    if (v < 0) {
      uint8_t c = uint8_t(text[i]);
      error = c >= 0x20 && c < 0x7f ? fmt::format("invalid character '{}' at offset {}", char(c), i)
                                    : fmt::format("invalid byte 0x{:02x} at offset {}", c, i);
      return std::nullopt;
    }
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t(acc >> bits));
    }
  }
  return out;
}

std::string base64_encode(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (i + 1 < size) v |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < size) v |= data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[v & 63] : '=';
  }
  return out;
}

}  // namespace ug::server
