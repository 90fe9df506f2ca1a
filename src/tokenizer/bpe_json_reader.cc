#include "tokenizer/bpe_json_reader.h"

#include <limits>

#include "core/error.h"

namespace ug::bpe {
namespace {

using json = nlohmann::json;

// Line and column (1-based) of a byte offset, for syntax errors.
std::pair<size_t, size_t> line_column(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

std::string json_quote(std::string_view s) {
  std::string out = json(std::string(s)).dump();
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

// SAX handler: builds a DOM for the small parts, streams model.vocab and model.merges into arenas.
class Handler {
 public:
  Handler(RawTokenizerJson& out, std::string_view text, std::string_view source)
      : out_(out), text_(text), source_(source) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return integer(v, json(v)); }
  bool number_unsigned(json::number_unsigned_t v) {
    int64_t clamped = v > uint64_t(std::numeric_limits<int64_t>::max()) ? -1 : int64_t(v);
    return integer(clamped, json(v));
  }
  bool number_float(json::number_float_t v, const std::string&) { return value(json(v)); }
  bool binary(json::binary_t&) { return value(json(nullptr)); }

  bool string(std::string& s) {
    if (stack_.empty()) return top_level_error();
    Frame& f = stack_.back();
    switch (f.kind) {
      case Kind::kMerges:
        return merge_string(s);
      case Kind::kMergePair:
        return merge_pair_part(s);
      case Kind::kVocab:
        vocab_value_error("a string");
      default:
        return value(json(std::move(s)));
    }
  }

  bool start_object(size_t) { return start(true); }
  bool start_array(size_t) { return start(false); }

  bool key(std::string& k) {
    Frame& f = stack_.back();
    f.key = std::move(k);
    return true;
  }

  bool end_object() { return end(); }
  bool end_array() {
    Frame& f = stack_.back();
    if (f.kind == Kind::kMergePair && f.index != 2) merge_shape_error(f.merge_index);
    return end();
  }

  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    auto [line, col] = line_column(text_, position == 0 ? 0 : position - 1);
    std::string what = ex.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 2: ".
    if (auto p = what.find(": "); p != std::string::npos && what.rfind("[json.exception", 0) == 0)
      what = what.substr(p + 2);
    fail("{}:{}:{}: invalid JSON: {}", source_, line, col, what);
  }

 private:
  enum class Kind { kDomObject, kDomArray, kVocab, kMerges, kMergePair };
  struct Frame {
    Kind kind;
    json* node = nullptr;  // DOM frames only
    std::string path;      // JSON path of this container, for messages
    std::string key;       // object frames: key of the value being read
    size_t index = 0;      // array frames: index of the next element
    size_t merge_index = 0;
  };

  std::string child_path(const Frame& f) const {
    if (f.kind == Kind::kDomArray) return fmt::format("{}[{}]", f.path, f.index);
    return f.path.empty() ? f.key : f.path + "." + f.key;
  }

  bool top_level_error() { fail("{}: top level must be a JSON object", source_); }

  bool value(json v) {
    if (stack_.empty()) return top_level_error();
    Frame& f = stack_.back();
    switch (f.kind) {
      case Kind::kDomObject:
        (*f.node)[f.key] = std::move(v);
        return true;
      case Kind::kDomArray:
        f.node->push_back(std::move(v));
        ++f.index;
        return true;
      case Kind::kVocab:
        vocab_value_error("a non-integer value");
      case Kind::kMerges:
      case Kind::kMergePair:
        merge_shape_error(current_merge_index());
    }
    return true;
  }

  bool integer(int64_t v, json as_json) {
    if (!stack_.empty() && stack_.back().kind == Kind::kVocab) {
      Frame& f = stack_.back();
      if (v < 0 || v > std::numeric_limits<int32_t>::max())
        fail("{}: model.vocab[{}]: id {} is out of range [0, 2^31)", source_, json_quote(f.key),
             as_json.dump());
      RawVocabEntry e;
      e.piece = append(out_.vocab_arena, f.key);
      e.id = v;
      out_.vocab.push_back(e);
      return true;
    }
    return value(std::move(as_json));
  }

  [[noreturn]] void vocab_value_error(const char* got) {
    fail("{}: model.vocab[{}]: expected an integer id, got {}", source_,
         json_quote(stack_.back().key), got);
  }

  size_t current_merge_index() const {
    const Frame& f = stack_.back();
    return f.kind == Kind::kMergePair ? f.merge_index : f.index;
  }

  [[noreturn]] void merge_shape_error(size_t index) {
    fail("{}: model.merges[{}]: expected \"left right\" or [\"left\", \"right\"]", source_, index);
  }

  ArenaRef append(std::string& arena, std::string_view s) {
    if (arena.size() + s.size() > std::numeric_limits<uint32_t>::max())
      fail("{}: tokenizer.json too large (string arena over 4 GiB)", source_);
    ArenaRef r{uint32_t(arena.size()), uint32_t(s.size())};
    arena.append(s);
    return r;
  }

  bool merge_string(const std::string& s) {
    Frame& f = stack_.back();
    size_t sp = s.find(' ');
    // HF requires exactly two space-separated parts in the legacy string format.
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      fail("{}: model.merges[{}]: {} is not of the form \"left right\"", source_, f.index,
           json_quote(s));
    RawMerge m;
    m.left = append(out_.merge_arena, std::string_view(s).substr(0, sp));
    m.right = append(out_.merge_arena, std::string_view(s).substr(sp + 1));
    out_.merges.push_back(m);
    ++f.index;
    return true;
  }

  bool merge_pair_part(const std::string& s) {
    Frame& f = stack_.back();
    if (f.index >= 2) merge_shape_error(f.merge_index);
    ArenaRef r = append(out_.merge_arena, s);
    if (f.index == 0)
      out_.merges.push_back(RawMerge{r, {}});
    else
      out_.merges.back().right = r;
    ++f.index;
    return true;
  }

  bool start(bool is_object) {
    if (stack_.empty()) {
      if (!is_object) return top_level_error();
      stack_.push_back(Frame{Kind::kDomObject, &out_.rest, "", "", 0, 0});
      return true;
    }
    Frame& f = stack_.back();
    if (f.kind == Kind::kVocab) vocab_value_error(is_object ? "an object" : "an array");
    if (f.kind == Kind::kMergePair) merge_shape_error(f.merge_index);
    if (f.kind == Kind::kMerges) {
      if (is_object) merge_shape_error(f.index);
      size_t merge_index = f.index++;
      stack_.push_back(Frame{Kind::kMergePair, nullptr, "", "", 0, merge_index});  // invalidates f
      return true;
    }
    std::string path = child_path(f);
    if (path == "model.vocab" && is_object) {
      out_.has_vocab = true;
      stack_.push_back(Frame{Kind::kVocab, nullptr, path, "", 0, 0});
      return true;
    }
    if (path == "model.merges" && !is_object) {
      out_.has_merges = true;
      stack_.push_back(Frame{Kind::kMerges, nullptr, path, "", 0, 0});
      return true;
    }
    json* child;
    if (f.kind == Kind::kDomObject) {
      child = &((*f.node)[f.key] = is_object ? json::object() : json::array());
    } else {
      f.node->push_back(is_object ? json::object() : json::array());
      child = &f.node->back();
      ++f.index;
    }
    stack_.push_back(Frame{is_object ? Kind::kDomObject : Kind::kDomArray, child, path, "", 0, 0});
    return true;
  }

  bool end() {
    stack_.pop_back();
    return true;
  }

  RawTokenizerJson& out_;
  std::string_view text_;
  std::string_view source_;
  std::vector<Frame> stack_;
};

}  // namespace

RawTokenizerJson read_tokenizer_json(std::string_view text, std::string_view source) {
  RawTokenizerJson out;
  out.vocab.reserve(text.size() / 128);
  out.merges.reserve(text.size() / 64);
  Handler handler(out, text, source);
  json::sax_parse(text.begin(), text.end(), &handler);
  return out;
}

}  // namespace ug::bpe
