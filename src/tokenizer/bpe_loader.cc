// Builds TokenizerData from tokenizer.json: checks the overall shape, then hands each section to
// the component that owns it.
#include "core/error.h"
#include "tokenizer/bpe_json_reader.h"
#include "tokenizer/bpe_tokenizer_data.h"

namespace ug::bpe {
namespace {

using json = nlohmann::json;

const json& section(const json& root, const char* key) {
  static const json kNull;
  auto it = root.find(key);
  return it == root.end() ? kNull : *it;
}

void check_model_shape(const RawTokenizerJson& raw, std::string_view source) {
  auto it = raw.rest.find("model");
  UG_CHECK(it != raw.rest.end(), "{}: missing field \"model\"", source);
  const json& model = *it;
  UG_CHECK(model.is_object(), "{}: model: expected an object, got {}", source, model.dump());
  if (auto t = model.find("type"); t != model.end()) {
    UG_CHECK(t->is_string(), "{}: model.type: expected a string, got {}", source, t->dump());
    UG_CHECK(*t == "BPE", "{}: model.type \"{}\" is not supported (only BPE)", source,
             t->get<std::string>());
  }
  UG_CHECK(!model.contains("vocab"), "{}: model.vocab: expected an object mapping piece to id",
           source);
  UG_CHECK(raw.has_vocab, "{}: missing field \"model.vocab\"", source);
  UG_CHECK(!model.contains("merges"), "{}: model.merges: expected an array", source);
  UG_CHECK(raw.has_merges, "{}: missing field \"model.merges\"", source);
}

bool flag(const json& token, const char* key, bool fallback, const std::string& where) {
  auto it = token.find(key);
  if (it == token.end()) return fallback;
  UG_CHECK(it->is_boolean(), "{}.{}: expected true or false, got {}", where, key, it->dump());
  return it->get<bool>();
}

void load_added_tokens(const json& list, TokenizerData& d) {
  if (list.is_null()) return;
  UG_CHECK(list.is_array(), "{}: added_tokens: expected an array", d.source);
  for (size_t i = 0; i < list.size(); ++i) {
    const json& t = list[i];
    std::string where = fmt::format("{}: added_tokens[{}]", d.source, i);
    UG_CHECK(t.is_object(), "{}: expected an object, got {}", where, t.dump());
    auto id = t.find("id");
    UG_CHECK(id != t.end() && id->is_number_integer() && id->get<int64_t>() >= 0 &&
                 id->get<int64_t>() <= INT32_MAX,
             "{}.id: expected a non-negative integer", where);
    auto content = t.find("content");
    UG_CHECK(content != t.end() && content->is_string(), "{}.content: expected a string", where);
    for (const char* key : {"lstrip", "rstrip", "single_word"})
      UG_CHECK(!flag(t, key, false, where), "{}.{}: true is not supported", where, key);
    bool special = flag(t, "special", false, where);
    bool normalized = flag(t, "normalized", !special, where);
    int32_t tid = int32_t(id->get<int64_t>());
    const std::string& text = content->get_ref<const std::string&>();
    d.vocab->add_token(text, tid, where);
    if (normalized)
      d.normalized_tokens.add(d.normalizer.apply(text), tid);
    else
      d.raw_tokens.add(text, tid);
    if (size_t(tid) >= d.special.size()) d.special.resize(size_t(tid) + 1, false);
    d.special[size_t(tid)] = special;
  }
}

}  // namespace

std::shared_ptr<const TokenizerData> load_tokenizer_data(std::string_view text,
                                                         std::string_view source) {
  auto d = std::make_shared<TokenizerData>();
  d->source = std::string(source);
  RawTokenizerJson raw = read_tokenizer_json(text, source);
  check_model_shape(raw, source);
  d->normalizer =
      Normalizer::from_json(section(raw.rest, "normalizer"), fmt::format("{}: normalizer", source));
  d->pre_tokenizer = PreTokenizer::from_json(section(raw.rest, "pre_tokenizer"),
                                             fmt::format("{}: pre_tokenizer", source));
  d->decoder = Decoder::from_json(section(raw.rest, "decoder"), fmt::format("{}: decoder", source));
  d->vocab = std::make_shared<Vocab>();
  d->vocab->build_from_model(raw, source);
  load_added_tokens(section(raw.rest, "added_tokens"), *d);
  d->vocab->finish(source);
  d->special.resize(size_t(d->vocab->size()), false);
  d->model = std::make_unique<BpeModel>(raw, d->vocab, source);
  return d;
}

}  // namespace ug::bpe
