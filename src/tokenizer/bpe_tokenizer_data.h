// Internal: the immutable state behind ug::Tokenizer, shared by its copies and by
// IncrementalDetokenizer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/bpe_added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/bpe_pipeline.h"
#include "tokenizer/bpe_vocab.h"

namespace ug::bpe {

struct TokenizerData {
  std::string source;
  std::shared_ptr<Vocab> vocab;
  std::unique_ptr<BpeModel> model;
  AddedTokenMatcher raw_tokens;         // added tokens with normalized=false: matched on raw text
  AddedTokenMatcher normalized_tokens;  // normalized=true: matched after normalization
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Decoder decoder;
  std::vector<bool> special;  // by id
};

// Builds everything from tokenizer.json text; errors are prefixed with `source`.
std::shared_ptr<const TokenizerData> load_tokenizer_data(std::string_view json,
                                                         std::string_view source);

}  // namespace ug::bpe
