// Stop strings on streamed text (OpenAI `stop`). Text arrives in chunks (detokenizer output);
// the matcher emits everything that can no longer be part of a stop string at once and holds
// back only the shortest tail that could still begin one. When a stop string completes, the
// text before it is emitted with stopped = true; the stop string and anything after it are
// dropped. Matching is on bytes, so stops may span pushes and split UTF-8 sequences.
//
// Result is independent of how the text is chunked: a stop "completes" at the byte where it
// ends, so when several stop strings occur, the one ending first wins (ties: the one starting
// first), exactly as if the text had been pushed one byte at a time.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

class StopMatcher {
 public:
  struct Result {
    std::string emit;      // text safe to send to the client now
    bool stopped = false;  // a stop string completed (in this push or an earlier one)
  };

  // Throws ug::Error if any stop string is empty. An empty list never stops.
  explicit StopMatcher(std::vector<std::string> stops);

  // Feeds the next chunk. After a stop, further pushes emit nothing and report stopped.
  Result push(std::string_view new_text);
  // End of generation: returns the held-back tail (empty once stopped).
  std::string flush();

  bool stopped() const { return matched_.has_value(); }
  // Index into the constructor's list of the stop string that ended the text, if any.
  std::optional<size_t> matched_stop() const { return matched_; }
  // Bytes currently held back (for tests and diagnostics).
  size_t held_bytes() const { return held_.size(); }

 private:
  size_t holdback_start() const;

  std::vector<std::string> stops_;
  std::string held_;  // a suffix of the text so far that is a proper prefix of some stop
  std::optional<size_t> matched_;
};

}  // namespace ug
