// A prompt ready for the decoder: token ids plus the multimodal parts that the ids alone do not carry
// (embedding rows of image / audio / video soft tokens, bidirectional block ids). Built by the prompt
// assembler (runtime/multimodal_prompt.h) from chat messages; consumed by the Generator and the Scheduler.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace ug {

// A run of consecutive soft-token positions whose embeddings come from one media item.
struct MediaSpan {
  int64_t position = 0;  // index in PromptInput::tokens of the first soft token
  int64_t count = 0;     // soft tokens (rows)
  std::shared_ptr<const std::vector<float>> rows;  // [>= row_offset + count, hidden], shared with the cache
  int64_t row_offset = 0;                           // first row used
  uint64_t content_hash = 0;  // identifies the rows (media bytes + preprocessing); prefix-cache key part
};

struct PromptInput {
  std::vector<int32_t> tokens;     // [n]
  std::vector<int32_t> block_ids;  // [n] or empty: bidirectional block per token (-1 = none)
  std::vector<MediaSpan> media;    // sorted by position, non-overlapping

  int64_t size() const { return int64_t(tokens.size()); }
  bool has_media() const { return !media.empty(); }
  // Per-token embedding row pointers (nullptr = use the token embedding) for positions [begin, end).
  std::vector<const float*> override_rows(int64_t begin, int64_t end, int64_t hidden) const;
  // Appends `other` (positions shifted by size()).
  void append(const PromptInput& other);
};

}  // namespace ug
