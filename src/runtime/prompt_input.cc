#include "runtime/prompt_input.h"

#include <algorithm>

#include "core/error.h"

namespace ug {

std::vector<const float*> PromptInput::override_rows(int64_t begin, int64_t end, int64_t hidden) const {
  UG_CHECK(0 <= begin && begin <= end && end <= size(), "override_rows: range [{}, {}) outside a prompt of {}",
           begin, end, size());
  std::vector<const float*> out(size_t(end - begin), nullptr);
  for (const MediaSpan& m : media) {
    UG_CHECK(m.rows && int64_t(m.rows->size()) >= (m.row_offset + m.count) * hidden,
             "media span at position {}: {} rows needed, embedding holds {} values", m.position, m.count,
             m.rows ? m.rows->size() : 0);
    for (int64_t i = std::max(begin, m.position); i < std::min(end, m.position + m.count); ++i)
      out[size_t(i - begin)] = m.rows->data() + (m.row_offset + i - m.position) * hidden;
  }
  return out;
}

void PromptInput::append(const PromptInput& other) {
  const int64_t shift = size();
  if (!other.block_ids.empty() || !block_ids.empty()) {
    int32_t next_block = 0;
    for (int32_t b : block_ids) next_block = std::max(next_block, b + 1);
    block_ids.resize(tokens.size(), -1);
    for (int32_t b : other.block_ids) block_ids.push_back(b < 0 ? -1 : b + next_block);
    block_ids.resize(tokens.size() + other.tokens.size(), -1);
  }
  tokens.insert(tokens.end(), other.tokens.begin(), other.tokens.end());
  for (MediaSpan m : other.media) {
    m.position += shift;
    media.push_back(std::move(m));
  }
}

}  // namespace ug
