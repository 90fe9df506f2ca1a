#include "tokenizer/bpe_pipeline.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/bpe_utf8.h"

namespace ug::bpe {
namespace {

using json = nlohmann::json;

std::string type_of(const json& j, const std::string& path) {
  UG_CHECK(j.is_object(), "{}: expected an object, got {}", path, j.dump());
  auto it = j.find("type");
  UG_CHECK(it != j.end() && it->is_string(), "{}.type: missing or not a string", path);
  return it->get<std::string>();
}

const json& field(const json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  UG_CHECK(it != j.end(), "{}.{}: missing", path, key);
  return *it;
}

std::string string_field(const json& j, const char* key, const std::string& path) {
  const json& v = field(j, key, path);
  UG_CHECK(v.is_string(), "{}.{}: expected a string, got {}", path, key, v.dump());
  return v.get<std::string>();
}

// {"String": "x"} -> "x"; regex patterns are not supported.
std::string literal_pattern(const json& j, const std::string& path) {
  const json& p = field(j, "pattern", path);
  UG_CHECK(p.is_object() && p.contains("String") && p["String"].is_string(),
           "{}.pattern: only {{\"String\": ...}} patterns are supported, got {}", path, p.dump());
  std::string s = p["String"].get<std::string>();
  UG_CHECK(!s.empty(), "{}.pattern: empty pattern is not supported", path);
  return s;
}

ReplaceRule replace_rule(const json& j, const std::string& path) {
  return ReplaceRule{literal_pattern(j, path), string_field(j, "content", path)};
}

const json& sequence_items(const json& j, const char* key, const std::string& path) {
  const json& items = field(j, key, path);
  UG_CHECK(items.is_array(), "{}.{}: expected an array", path, key);
  return items;
}

}  // namespace

void replace_all(std::string_view in, const ReplaceRule& rule, std::string& out) {
  size_t pos = 0;
  while (true) {
    size_t hit = in.find(rule.pattern, pos);
    if (hit == std::string_view::npos) break;
    out.append(in.substr(pos, hit - pos));
    out.append(rule.content);
    pos = hit + rule.pattern.size();
  }
  out.append(in.substr(pos));
}

std::string replace_each(std::string_view text, const std::vector<ReplaceRule>& rules) {
  std::string cur(text), next;
  for (const ReplaceRule& r : rules) {
    next.clear();
    replace_all(cur, r, next);
    cur.swap(next);
  }
  return cur;
}

// ---- Normalizer
// ----------------------------------------------------------------------------------

Normalizer Normalizer::from_json(const json& j, std::string_view path) {
  Normalizer n;
  if (!j.is_null()) n.add(j, std::string(path));
  return n;
}

void Normalizer::add(const json& j, const std::string& path) {
  std::string type = type_of(j, path);
  if (type == "Sequence") {
    const json& items = sequence_items(j, "normalizers", path);
    for (size_t i = 0; i < items.size(); ++i)
      add(items[i], fmt::format("{}.normalizers[{}]", path, i));
  } else if (type == "Replace") {
    steps_.push_back(Step{false, replace_rule(j, path)});
  } else if (type == "Prepend") {
    steps_.push_back(Step{true, ReplaceRule{"", string_field(j, "prepend", path)}});
  } else {
    fail("{}: normalizer type \"{}\" is not supported (supported: Replace, Prepend, Sequence)",
         path, type);
  }
}

std::string Normalizer::apply(std::string_view text) const {
  std::string cur(text), next;
  for (const Step& s : steps_) {
    if (s.prepend) {
      if (!cur.empty()) cur.insert(0, s.rule.content);
      continue;
    }
    next.clear();
    replace_all(cur, s.rule, next);
    cur.swap(next);
  }
  return cur;
}

// ---- PreTokenizer
// --------------------------------------------------------------------------------

PreTokenizer PreTokenizer::from_json(const json& j, std::string_view path) {
  PreTokenizer p;
  if (!j.is_null()) p.add(j, std::string(path));
  return p;
}

void PreTokenizer::add(const json& j, const std::string& path) {
  std::string type = type_of(j, path);
  if (type == "Sequence") {
    const json& items = sequence_items(j, "pretokenizers", path);
    for (size_t i = 0; i < items.size(); ++i)
      add(items[i], fmt::format("{}.pretokenizers[{}]", path, i));
    return;
  }
  UG_CHECK(type == "Split",
           "{}: pre_tokenizer type \"{}\" is not supported (supported: Split, Sequence)", path,
           type);
  if (auto it = j.find("invert"); it != j.end())
    UG_CHECK(it->is_boolean() && !it->get<bool>(), "{}.invert: only false is supported", path);
  std::string behavior = string_field(j, "behavior", path);
  static const std::pair<const char*, Behavior> kNames[] = {
      {"Removed", Behavior::kRemoved},
      {"Isolated", Behavior::kIsolated},
      {"MergedWithPrevious", Behavior::kMergedWithPrevious},
      {"MergedWithNext", Behavior::kMergedWithNext},
      {"Contiguous", Behavior::kContiguous}};
  for (const auto& [name, b] : kNames) {
    if (behavior == name) {
      steps_.push_back(Step{literal_pattern(j, path), b});
      return;
    }
  }
  fail("{}.behavior: unknown split behavior \"{}\"", path, behavior);
}

// Port of HF's NormalizedString::split for a literal pattern.
void PreTokenizer::split_one(std::string_view text, const Step& step,
                             std::vector<std::string_view>& out) {
  struct Piece {
    size_t begin, end;
    bool match;
  };
  std::vector<Piece> pieces;
  for (size_t pos = 0;;) {
    size_t hit = text.find(step.pattern, pos);
    if (hit == std::string_view::npos) break;
    if (hit != pos) pieces.push_back({pos, hit, false});
    pieces.push_back({hit, hit + step.pattern.size(), true});
    pos = hit + step.pattern.size();
    if (pos == text.size()) break;
  }
  size_t covered = pieces.empty() ? 0 : pieces.back().end;
  if (covered != text.size()) pieces.push_back({covered, text.size(), false});

  std::vector<Piece> merged;
  const size_t n = pieces.size();
  bool previous_match = false;
  switch (step.behavior) {
    case Behavior::kRemoved:
      for (const Piece& p : pieces)
        if (!p.match) merged.push_back(p);
      break;
    case Behavior::kIsolated:
      merged = pieces;
      break;
    case Behavior::kContiguous:
      for (const Piece& p : pieces) {
        if (p.match == previous_match && !merged.empty())
          merged.back().end = p.end;
        else
          merged.push_back(p);
        previous_match = p.match;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const Piece& p : pieces) {
        if (p.match && !previous_match && !merged.empty())
          merged.back().end = p.end;
        else
          merged.push_back(p);
        previous_match = p.match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (size_t i = n; i-- > 0;) {
        const Piece& p = pieces[i];
        if (p.match && !previous_match && !merged.empty())
          merged.back().begin = p.begin;
        else
          merged.push_back(p);
        previous_match = p.match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
  }
  for (const Piece& p : merged)
    if (p.end > p.begin) out.push_back(text.substr(p.begin, p.end - p.begin));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words) const {
  if (text.empty()) return;
  std::vector<std::string_view> cur{text}, next;
  for (const Step& s : steps_) {
    next.clear();
    for (std::string_view w : cur) split_one(w, s, next);
    cur.swap(next);
  }
  words.insert(words.end(), cur.begin(), cur.end());
}

// ---- Decoder
// -------------------------------------------------------------------------------------

bool parse_byte_token(std::string_view t, uint8_t& byte) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return false;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = t[3] == '+' ? 0 : hex(t[3]);
  int lo = hex(t[4]);
  if (hi < 0 || lo < 0) return false;
  byte = uint8_t(hi * 16 + lo);
  return true;
}

Decoder Decoder::from_json(const json& j, std::string_view path) {
  Decoder d;
  if (j.is_null()) {
    d.join_with_space_ = true;
    return d;
  }
  bool fused = false;
  d.add(j, std::string(path), fused);
  return d;
}

void Decoder::add(const json& j, const std::string& path, bool& fused) {
  std::string type = type_of(j, path);
  if (type == "Sequence") {
    const json& items = sequence_items(j, "decoders", path);
    for (size_t i = 0; i < items.size(); ++i)
      add(items[i], fmt::format("{}.decoders[{}]", path, i), fused);
    return;
  }
  UG_CHECK(!fused, "{}: decoder steps after Fuse are not supported", path);
  if (type == "Replace") {
    (byte_fallback_ ? after_bytes_ : before_bytes_).push_back(replace_rule(j, path));
  } else if (type == "ByteFallback") {
    UG_CHECK(!byte_fallback_, "{}: ByteFallback appears twice", path);
    byte_fallback_ = true;
  } else if (type == "Fuse") {
    fused = true;  // the final join is a concatenation anyway
  } else {
    fail(
        "{}: decoder type \"{}\" is not supported (supported: Replace, ByteFallback, Fuse, "
        "Sequence)",
        path, type);
  }
}

void Decoder::emit(State& state, std::string_view token, std::string& out) const {
  if (join_with_space_ && !state.first) out.push_back(' ');
  state.first = false;
  if (after_bytes_.empty()) {
    out.append(token);
    return;
  }
  out.append(replace_each(token, after_bytes_));
}

void Decoder::flush_bytes(State& state, std::string& out) const {
  if (state.bytes.empty()) return;
  if (is_valid_utf8(state.bytes)) {
    emit(state, state.bytes, out);
  } else {
    for (size_t i = 0; i < state.bytes.size(); ++i) emit(state, "\xEF\xBF\xBD", out);  // U+FFFD
  }
  state.bytes.clear();
}

Decoder::Piece Decoder::read_piece(std::string_view piece) const {
  Piece p{.text = replace_each(piece, before_bytes_)};
  p.is_byte = byte_fallback_ && parse_byte_token(p.text, p.byte);
  return p;
}

void Decoder::push(State& state, std::string_view piece, std::string& out) const {
  Piece p = read_piece(piece);
  if (p.is_byte) {
    state.bytes.push_back(char(p.byte));
    return;
  }
  flush_bytes(state, out);
  emit(state, p.text, out);
}

void Decoder::finish(State& state, std::string& out) const { flush_bytes(state, out); }

std::string Decoder::piece_bytes(std::string_view piece, bool& byte_piece) const {
  Piece p = read_piece(piece);
  byte_piece = p.is_byte;
  if (p.is_byte) return std::string(1, char(p.byte));
  return std::move(p.text);
}

}  // namespace ug::bpe
