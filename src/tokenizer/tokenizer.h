// HF-exact tokenizer for BPE tokenizer.json files (Gemma 4's pipeline and close relatives):
// added-token split on raw text (leftmost-longest), normalizer, pre-tokenizer, rank-ordered BPE
// with byte fallback, and HF's decoder semantics. See docs tokenizer_chat.md §4 for the algorithm.
//
// Input text must be valid UTF-8 (HF works on Rust strings); encode() rejects anything else with
// the byte offset of the first bad byte. A Tokenizer is cheap to copy (shared, immutable state).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

namespace bpe {
struct TokenizerData;
}

class Tokenizer {
 public:
  // Loads tokenizer.json; reads tokenizer_config.json beside it, if present, for add_bos_token.
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  // Parses tokenizer.json text; `source_name` prefixes every error message.
  static Tokenizer from_json_text(std::string_view json, std::string_view source_name);

  // Never adds BOS; added (incl. special) tokens are matched anywhere in the text.
  std::vector<int32_t> encode(std::string_view text) const;
  // HF semantics: byte tokens are grouped into runs; an invalid run gives one U+FFFD per byte
  // token.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view piece) const;
  std::string_view id_to_piece(int32_t id) const;  // raw piece; throws ug::Error if out of range
  // The bytes `id` adds to the decoded text: the raw byte of a byte-fallback token <0xNN>
  // (*byte_token = true), else its piece after the decoder's Replace steps ("▁" -> " "). Their
  // concatenation equals decode() whenever every byte-fallback run is valid UTF-8 (constrained
  // decoding relies on it). Throws ug::Error for decoders without that property (space-joined,
  // Replace after ByteFallback) or an id out of range.
  std::string token_bytes(int32_t id, bool* byte_token = nullptr) const;
  bool is_special(int32_t id) const;               // false for ids out of range
  bool add_bos() const;    // tokenizer_config.json add_bos_token (default false)
  int32_t bos_id() const;  // id of "<bos>", or -1
  int32_t eos_id() const;  // id of "<eos>", or -1
  int32_t pad_id() const;  // id of "<pad>", or -1

  // Sets add_bos (from_file does this from tokenizer_config.json).
  void set_add_bos(bool add_bos);

 private:
  friend class IncrementalDetokenizer;
  explicit Tokenizer(std::shared_ptr<const bpe::TokenizerData> data) : d_(std::move(data)) {}
  void check_id(int32_t id) const;

  std::shared_ptr<const bpe::TokenizerData> d_;
  bool add_bos_ = false;
};

}  // namespace ug
