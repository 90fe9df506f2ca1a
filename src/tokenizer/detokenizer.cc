#include "tokenizer/detokenizer.h"

#include "tokenizer/bpe_tokenizer_data.h"

namespace ug {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  tokenizer_.check_id(id);
  std::string out;
  const bpe::TokenizerData& d = *tokenizer_.d_;
  if (skip_special_ && d.special[size_t(id)]) return out;
  d.decoder.push(state_, d.vocab->piece(id), out);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out;
  tokenizer_.d_->decoder.finish(state_, out);
  state_ = bpe::Decoder::State{};
  return out;
}

}  // namespace ug
