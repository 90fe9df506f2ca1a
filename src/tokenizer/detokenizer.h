// Streaming decode for generation: push ids one at a time and get only text that is final. Text
// from a run of byte-fallback tokens is held back until the run ends (HF decodes a run as a whole
// and turns an invalid run into one U+FFFD per byte), so no partial character is ever emitted and
// the concatenation of all push() results plus flush() equals Tokenizer::decode(all ids) exactly.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/bpe_pipeline.h"
#include "tokenizer/tokenizer.h"

namespace ug {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);

  // Returns the text completed by `id` (may be empty). Throws ug::Error for an id out of range.
  std::string push(int32_t id);
  // Returns whatever is still held back and resets the stream.
  std::string flush();
  // True if some bytes are held back waiting for the end of a byte-fallback run.
  bool has_pending() const { return !state_.bytes.empty(); }

 private:
  Tokenizer tokenizer_;  // shares the immutable state, so the detokenizer can outlive the original
  bool skip_special_;
  bpe::Decoder::State state_;
};

}  // namespace ug
