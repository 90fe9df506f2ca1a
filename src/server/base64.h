// Strict standard base64 (RFC 4648 §4) decoding for media in request bodies. Padding is optional;
// whitespace and any other character are errors naming the offset, so a truncated or corrupted
// payload is reported instead of decoded into garbage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ug::server {

// Decoded size of `text` (ignores validity), for limit checks before decoding.
size_t base64_decoded_size(std::string_view text);

// Returns the bytes, or nullopt and sets `error` ("invalid character '%' at offset 17" ...).
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text, std::string& error);

std::string base64_encode(const uint8_t* data, size_t size);

}  // namespace ug::server
