#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/bpe_tokenizer_data.h"
#include "tokenizer/bpe_utf8.h"

namespace ug {
namespace {

// add_bos_token from tokenizer_config.json; false when the file or the field is absent.
bool read_add_bos(const std::string& config_path) {
  std::error_code ec;
  if (!std::filesystem::exists(config_path, ec)) return false;
  std::string text = read_text_file(config_path);
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", config_path, e.what());
  }
  UG_CHECK(config.is_object(), "{}: top level must be a JSON object", config_path);
  auto it = config.find("add_bos_token");
  if (it == config.end() || it->is_null()) return false;
  UG_CHECK(it->is_boolean(), "{}: add_bos_token: expected true or false, got {}", config_path,
           it->dump());
  return it->get<bool>();
}

}  // namespace

Tokenizer Tokenizer::from_file(const std::string& path) {
  MappedFile file(path);
  std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  Tokenizer t(bpe::load_tokenizer_data(text, path));
  std::filesystem::path config =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  t.add_bos_ = read_add_bos(config.string());
  return t;
}

Tokenizer Tokenizer::from_json_text(std::string_view json, std::string_view source_name) {
  return Tokenizer(bpe::load_tokenizer_data(json, source_name));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  size_t bad = bpe::find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    fail("{}: encode: input is not valid UTF-8 (byte 0x{:02X} at byte offset {})", d_->source,
         uint8_t(text[bad]), bad);
  std::vector<int32_t> ids;
  std::vector<bpe::Segment> raw_segments, norm_segments;
  std::vector<std::string_view> words;
  d_->raw_tokens.split(text, raw_segments);
  for (const bpe::Segment& seg : raw_segments) {
    if (seg.token >= 0) {
      ids.push_back(seg.token);
      continue;
    }
    std::string normalized = d_->normalizer.apply(seg.text);
    norm_segments.clear();
    d_->normalized_tokens.split(normalized, norm_segments);
    for (const bpe::Segment& part : norm_segments) {
      if (part.token >= 0) {
        ids.push_back(part.token);
        continue;
      }
      words.clear();
      d_->pre_tokenizer.split(part.text, words);
      for (std::string_view w : words) d_->model->encode_word(w, ids);
    }
  }
  return ids;
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= d_->vocab->size())
    fail("{}: token id {} out of range [0, {})", d_->source, id, d_->vocab->size());
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bpe::Decoder::State state;
  for (int32_t id : ids) {
    check_id(id);
    if (skip_special && d_->special[size_t(id)]) continue;
    d_->decoder.push(state, d_->vocab->piece(id), out);
  }
  d_->decoder.finish(state, out);
  return out;
}

int32_t Tokenizer::vocab_size() const { return d_->vocab->size(); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view piece) const {
  return d_->vocab->find(piece);
}

std::string_view Tokenizer::id_to_piece(int32_t id) const {
  check_id(id);
  return d_->vocab->piece(id);
}

std::string Tokenizer::token_bytes(int32_t id, bool* byte_token) const {
  check_id(id);
  UG_CHECK(d_->decoder.is_concatenation(),
           "{}: token_bytes: this decoder does not decode token by token (space-joined or Replace "
           "after ByteFallback)",
           d_->source);
  bool is_byte = false;
  std::string out = d_->decoder.piece_bytes(d_->vocab->piece(id), is_byte);
  if (byte_token) *byte_token = is_byte;
  return out;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < d_->vocab->size() && d_->special[size_t(id)];
}

bool Tokenizer::add_bos() const { return add_bos_; }
void Tokenizer::set_add_bos(bool add_bos) { add_bos_ = add_bos; }

int32_t Tokenizer::bos_id() const { return token_to_id("<bos>").value_or(-1); }
int32_t Tokenizer::eos_id() const { return token_to_id("<eos>").value_or(-1); }
int32_t Tokenizer::pad_id() const { return token_to_id("<pad>").value_or(-1); }

}  // namespace ug
