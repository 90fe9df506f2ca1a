// UTF-8 helpers with Rust's (= HF tokenizers') notion of validity: no overlong forms, no
// surrogates, nothing above U+10FFFF.
#pragma once

#include <cstddef>
#include <string_view>

namespace ug::bpe {

// Length of the valid UTF-8 sequence starting at s[pos], or 0 if it is invalid or truncated.
size_t utf8_sequence_length(std::string_view s, size_t pos);

// Offset of the first byte that does not start a valid sequence, or npos when all of `s` is valid.
size_t find_invalid_utf8(std::string_view s);

// True if `s` is complete, valid UTF-8.
inline bool is_valid_utf8(std::string_view s) {
  return find_invalid_utf8(s) == std::string_view::npos;
}

}  // namespace ug::bpe
