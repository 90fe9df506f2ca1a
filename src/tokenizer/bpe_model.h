// The BPE model of HF tokenizers (models/bpe): initial symbols per Unicode scalar with byte
// fallback and unk fusing, then rank-ordered merges with a heap (O(n log n), so a 100 KB word is
// fast).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "tokenizer/bpe_json_reader.h"
#include "tokenizer/bpe_pair_map.h"
#include "tokenizer/bpe_vocab.h"

namespace ug::bpe {

class BpeModel {
 public:
  // Reads the options in raw.rest["model"] and resolves raw.merges against `vocab` (model.vocab
  // must already be loaded). Throws ug::Error naming the field for anything unsupported or
  // inconsistent.
  BpeModel(const RawTokenizerJson& raw, std::shared_ptr<const Vocab> vocab,
           std::string_view source);

  // Appends the ids of one pre-tokenized word. `word` must be valid UTF-8.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  size_t merge_count() const { return merges_.size(); }

 private:
  void read_options(const nlohmann::json& model, std::string_view source);
  struct ResolvedMerge {
    int32_t a, b, result;
  };
  void lookup_merges(const RawTokenizerJson& raw, size_t begin, size_t end,
                     std::vector<ResolvedMerge>& out) const;
  void resolve_merges(const RawTokenizerJson& raw, std::string_view source);
  void initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const;
  void merge_all(std::vector<int32_t>& symbols) const;

  std::shared_ptr<const Vocab> vocab_;
  PairMap merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>" or -1
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
};

}  // namespace ug::bpe
