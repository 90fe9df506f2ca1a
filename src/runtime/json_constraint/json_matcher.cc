#include "runtime/json_constraint/json_matcher.h"

#include <algorithm>
#include <cstring>

namespace ug {
namespace {

// Root phases.
constexpr uint8_t kBefore = 0, kAfter = 1;
// Object phases (kKey: a key frame is on top).
constexpr uint8_t kObjOpen = 0, kObjKey = 1, kObjColon = 2, kObjValue = 3, kObjAfter = 4,
                  kObjComma = 5;
// Array phases.
constexpr uint8_t kArrOpen = 0, kArrAfter = 1, kArrComma = 2;
// Key frame phase bit: an escape (\u, \/) was used, so the key is only valid as a declared name.
constexpr uint8_t kKeyTainted = 1;

// ---- string scanner (values and keys) ----------------------------------------------------------

enum ScanState : uint8_t {
  kNormal,
  kEscape,
  kHex1,
  kHex2,
  kHex3,
  kHex4,  // \uXXXX, not a low surrogate
  kLowBackslash,
  kLowU,  // after a high surrogate: "\u" must follow
  kLowHex1,
  kLowHex2,
  kLowHex3,
  kLowHex4,  // its low surrogate DC00-DFFF
  kU8Need1,
  kU8Need2,
  kU8Need3,  // continuation bytes 80-BF still needed
  kU8E0,
  kU8ED,
  kU8F0,
  kU8F4,  // first continuation with a narrower range
};

enum class Scan { kChar, kCont, kClose, kFail };  // kChar: this byte starts a new character

int hex_value(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

Scan scan_normal(uint8_t& sub, uint8_t b) {
  if (b == '"') return Scan::kClose;
  if (b == '\\') {
    sub = kEscape;
    return Scan::kChar;
  }
  if (b < 0x20) return Scan::kFail;
  if (b < 0x80) return Scan::kChar;
  if (b >= 0xC2 && b <= 0xDF)
    sub = kU8Need1;
  else if (b == 0xE0)
    sub = kU8E0;
  else if (b == 0xED)
    sub = kU8ED;
  else if (b >= 0xE1 && b <= 0xEF)
    sub = kU8Need2;
  else if (b == 0xF0)
    sub = kU8F0;
  else if (b >= 0xF1 && b <= 0xF3)
    sub = kU8Need3;
  else if (b == 0xF4)
    sub = kU8F4;
  else
    return Scan::kFail;
  return Scan::kChar;
}

// One byte of a JSON string body; `cu` accumulates \u code units.
Scan scan_byte(uint8_t& sub, uint32_t& cu, uint8_t b) {
  auto cont = [&](uint8_t lo, uint8_t hi, uint8_t next) {
    if (b < lo || b > hi) return Scan::kFail;
    sub = next;
    return Scan::kCont;
  };
  switch (sub) {
    case kNormal:
      return scan_normal(sub, b);
    case kEscape:
      if (b == 'u') {
        sub = kHex1;
        cu = 0;
        return Scan::kCont;
      }
      if (!std::strchr("\"\\/bfnrt", b) || b == 0) return Scan::kFail;
      sub = kNormal;
      return Scan::kCont;
    case kHex1:
    case kHex2:
    case kHex3:
    case kHex4: {
      const int h = hex_value(b);
      if (h < 0) return Scan::kFail;
      cu = cu * 16 + uint32_t(h);
      if (sub == kHex2 && cu >= 0xDC && cu <= 0xDF) return Scan::kFail;  // a lone low surrogate
      if (sub != kHex4) {
        ++sub;
        return Scan::kCont;
      }
      sub = cu >= 0xD800 && cu <= 0xDBFF ? kLowBackslash : kNormal;
      return Scan::kCont;
    }
    case kLowBackslash:
      return b == '\\' ? (sub = kLowU, Scan::kCont) : Scan::kFail;
    case kLowU:
      if (b != 'u') return Scan::kFail;
      sub = kLowHex1;
      cu = 0;
      return Scan::kCont;
    case kLowHex1:
      return (b == 'd' || b == 'D') ? (sub = kLowHex2, Scan::kCont) : Scan::kFail;
    case kLowHex2: {
      const int h = hex_value(b);
      return h >= 0xC ? (sub = kLowHex3, Scan::kCont) : Scan::kFail;
    }
    case kLowHex3:
      return hex_value(b) >= 0 ? (sub = kLowHex4, Scan::kCont) : Scan::kFail;
    case kLowHex4:
      return hex_value(b) >= 0 ? (sub = kNormal, Scan::kCont) : Scan::kFail;
    case kU8Need1:
      return cont(0x80, 0xBF, kNormal);
    case kU8Need2:
      return cont(0x80, 0xBF, kU8Need1);
    case kU8Need3:
      return cont(0x80, 0xBF, kU8Need2);
    case kU8E0:
      return cont(0xA0, 0xBF, kU8Need1);
    case kU8ED:
      return cont(0x80, 0x9F, kU8Need1);
    case kU8F0:
      return cont(0x90, 0xBF, kU8Need2);
    case kU8F4:
      return cont(0x80, 0x8F, kU8Need2);
  }
  return Scan::kFail;
}

// ---- numbers -----------------------------------------------------------------------------------

// States: 0 start, 1 '-', 2 "0", 3 int digits, 4 '.', 5 fraction digits, 6 'e', 7 exponent sign,
// 8 exponent digits. Returns the next state or -1.
int number_next(int s, uint8_t b, bool integer) {
  const bool digit = b >= '0' && b <= '9';
  const bool e = b == 'e' || b == 'E';
  switch (s) {
    case 0:
      return b == '-' ? 1 : b == '0' ? 2 : digit ? 3 : -1;
    case 1:
      return b == '0' ? 2 : digit ? 3 : -1;
    case 2:
      return integer ? -1 : b == '.' ? 4 : e ? 6 : -1;
    case 3:
      return digit ? 3 : integer ? -1 : b == '.' ? 4 : e ? 6 : -1;
    case 4:
      return digit ? 5 : -1;
    case 5:
      return digit ? 5 : e ? 6 : -1;
    case 6:
      return (b == '+' || b == '-') ? 7 : digit ? 8 : -1;
    case 7:
    case 8:
      return digit ? 8 : -1;
  }
  return -1;
}

bool number_complete(int s) { return s == 2 || s == 3 || s == 5 || s == 8; }

// Digits per part of a number (integer, fraction, exponent): every number the matcher accepts fits
// a double (nlohmann and others reject overflowing ones), and digits cannot run on forever.
constexpr uint32_t kMaxIntDigits = 20, kMaxFracDigits = 20, kMaxExpDigits = 2;

// The digit count of the current part after a byte that moved `from` -> `to`; -1 if too many.
int64_t digits_after(int from, int to, uint32_t count) {
  if (to != 3 && to != 5 && to != 8) return 0;
  const uint32_t n = from == to ? count + 1 : 1;
  const uint32_t limit = to == 3 ? kMaxIntDigits : to == 5 ? kMaxFracDigits : kMaxExpDigits;
  return n <= limit ? int64_t(n) : -1;
}

uint64_t all_properties(const GrammarNode& n) {
  return n.properties.size() >= 64 ? ~uint64_t(0) : (uint64_t(1) << n.properties.size()) - 1;
}

}  // namespace

// ---- JsonStackSet ------------------------------------------------------------------------------

std::string JsonStackSet::key() const {
  std::string k(reinterpret_cast<const char*>(frames_.data()), frames_.size() * sizeof(JsonFrame));
  k.append(reinterpret_cast<const char*>(ends_.data()), ends_.size() * sizeof(uint32_t));
  return k;
}

bool JsonStackSet::operator==(const JsonStackSet& o) const {
  return ends_ == o.ends_ && frames_.size() == o.frames_.size() &&
         std::memcmp(frames_.data(), o.frames_.data(), frames_.size() * sizeof(JsonFrame)) == 0;
}

// ---- JsonMatcher -------------------------------------------------------------------------------

JsonStackSet JsonMatcher::initial() const {
  JsonStackSet s;
  s.frames_.push_back({.node = g_.root(), .kind = FrameKind::kRoot, .phase = kBefore});
  s.ends_.push_back(1);
  return s;
}

bool JsonMatcher::accepts(const JsonStackSet& state) const {
  for (size_t i = 0; i < state.size(); ++i) {
    std::span<const JsonFrame> st = state[i];
    size_t top = st.size() - 1;
    const JsonFrame& f = st[top];
    if (top > 0 && ((f.kind == FrameKind::kNumber && number_complete(f.phase)) ||
                    (f.kind == FrameKind::kLiteral && g_.literal(int32_t(f.a)).terminal)))
      --top;
    if (st[top].kind == FrameKind::kRoot && st[top].phase == kAfter) return true;
  }
  return false;
}

std::optional<uint32_t> JsonMatcher::plain_string_room(const JsonStackSet& state) const {
  if (state.size() != 1) return std::nullopt;
  const JsonFrame& f = state[0].back();
  if (f.sub != kNormal) return std::nullopt;
  if (f.kind == FrameKind::kKey) {
    if (!g_.node(f.node).properties.empty()) return std::nullopt;
    return kUnbounded;
  }
  if (f.kind != FrameKind::kString) return std::nullopt;
  const GrammarNode& n = g_.node(f.node);
  if (n.min_length == 0 && n.max_length == kUnbounded) return kUnbounded;
  return n.max_length - f.a;
}

JsonStackSet JsonMatcher::advance(const JsonStackSet& from, std::string_view text) const {
  JsonStackSet cur = from, next;
  for (char c : text) {
    step(cur, uint8_t(c), next);
    std::swap(cur, next);
    if (cur.empty()) break;
  }
  return cur;
}

void JsonMatcher::step(const JsonStackSet& in, uint8_t b, JsonStackSet& out) const {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    std::span<const JsonFrame> st = in[i];
    const size_t start = out.frames_.size();
    out.frames_.insert(out.frames_.end(), st.begin(), st.end());
    feed(out, start, b);
  }
  if (out.size() > 1) dedupe(out);
}

void JsonMatcher::dedupe(JsonStackSet& s) {
  JsonStackSet u;
  for (size_t i = 0; i < s.size() && u.size() < kMaxStacks; ++i) {
    std::span<const JsonFrame> st = s[i];
    bool seen = false;
    for (size_t j = 0; j < u.size() && !seen; ++j) {
      std::span<const JsonFrame> o = u[j];
      seen = o.size() == st.size() && std::memcmp(o.data(), st.data(), st.size_bytes()) == 0;
    }
    if (seen) continue;
    u.frames_.insert(u.frames_.end(), st.begin(), st.end());
    u.ends_.push_back(uint32_t(u.frames_.size()));
  }
  s = std::move(u);
}

// The stack at out.frames_[start, end) takes byte b; on success it is committed (ends_ entry),
// otherwise removed. A finished number or literal pops and hands b to its parent.
void JsonMatcher::feed(JsonStackSet& out, size_t start, uint8_t b) const {
  for (;;) {
    JsonFrame& f = out.frames_.back();
    Act act = Act::kFail;
    switch (f.kind) {
      case FrameKind::kRoot:
        act = on_root(out, start, b);
        break;
      case FrameKind::kObject:
        act = on_object(out, start, b);
        break;
      case FrameKind::kKey:
        act = on_key(out, start, b);
        break;
      case FrameKind::kArray:
        act = on_array(out, start, b);
        break;
      case FrameKind::kString:
        act = on_string(f, b);
        break;
      case FrameKind::kNumber:
        act = on_number(f, b);
        break;
      case FrameKind::kLiteral:
        act = on_literal(f, b);
        break;
    }
    if (act == Act::kPop) {  // finished before b: b belongs to the parent
      out.frames_.pop_back();
      continue;
    }
    if (act == Act::kClose) out.frames_.pop_back();  // b closed the frame
    if (act == Act::kOk || act == Act::kClose) out.ends_.push_back(uint32_t(out.frames_.size()));
    if (act == Act::kFail) out.frames_.resize(start);
    return;
  }
}

bool JsonMatcher::push(JsonStackSet& out, size_t start, JsonFrame f) const {
  if (out.frames_.size() - start >= size_t(g_.limits().max_depth)) return false;
  out.frames_.push_back(f);
  return true;
}

// Whitespace: returns true when b is whitespace (ok = whether the run may grow by it); any other
// byte ends the run.
bool JsonMatcher::whitespace(JsonFrame& f, uint8_t b, bool& ok) const {
  if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
    f.ws = 0;
    return false;
  }
  const int len = f.ws & 0x7F;
  const bool newline = f.ws & 0x80;
  ok = len < g_.limits().max_whitespace_run && !(b == '\n' && newline);
  f.ws = uint8_t((len + 1) | (newline || b == '\n' ? 0x80 : 0));
  return true;
}

// A value of `node` begins with b (the container has already moved past it). Commits or drops.
void JsonMatcher::start_value(JsonStackSet& out, size_t start, int32_t node, uint8_t b,
                              int guard) const {
  const GrammarNode& n = g_.node(node);
  auto drop = [&] { out.frames_.resize(start); };
  auto commit = [&] { out.ends_.push_back(uint32_t(out.frames_.size())); };
  if (!n.first_bytes.test(b) || guard > 64) return drop();
  switch (n.kind) {
    case NodeKind::kAny: {
      const int32_t to = b == '{'                             ? JsonGrammar::kAnyObject
                         : b == '['                           ? JsonGrammar::kAnyArray
                         : b == '"'                           ? JsonGrammar::kAnyString
                         : (b == 't' || b == 'f' || b == 'n') ? JsonGrammar::kKeywordLiteral
                                                              : JsonGrammar::kAnyNumber;
      return start_value(out, start, to, b, guard + 1);
    }
    case NodeKind::kAnyOf: {
      int32_t only = -1, count = 0;
      for (int32_t alt : n.alternatives)
        if (g_.node(alt).first_bytes.test(b)) only = alt, ++count;
      if (count == 1) return start_value(out, start, only, b, guard + 1);
      const std::vector<JsonFrame> base(out.frames_.begin() + int64_t(start), out.frames_.end());
      drop();
      for (int32_t alt : n.alternatives) {
        if (!g_.node(alt).first_bytes.test(b)) continue;
        const size_t s2 = out.frames_.size();
        out.frames_.insert(out.frames_.end(), base.begin(), base.end());
        start_value(out, s2, alt, b, guard + 1);
      }
      return;
    }
    case NodeKind::kObject:
      if (!push(out, start, {.node = node, .kind = FrameKind::kObject, .mask = n.forbidden}))
        return drop();
      return commit();
    case NodeKind::kArray:
      if (!push(out, start, {.node = node, .kind = FrameKind::kArray})) return drop();
      return commit();
    case NodeKind::kString:
      if (!push(out, start, {.node = node, .kind = FrameKind::kString})) return drop();
      return commit();
    case NodeKind::kNumber:
    case NodeKind::kInteger: {
      const int s = number_next(0, b, n.kind == NodeKind::kInteger);
      if (!push(out, start,
                {.node = node,
                 .kind = FrameKind::kNumber,
                 .phase = uint8_t(s),
                 .a = s == 3 ? 1u : 0u}))
        return drop();
      return commit();
    }
    case NodeKind::kLiteral: {
      for (const auto& [c, child] : g_.literal(n.literal).next)
        if (c == b) {
          if (!push(out, start, {.node = node, .kind = FrameKind::kLiteral, .a = uint32_t(child)}))
            return drop();
          return commit();
        }
      return drop();
    }
  }
  drop();
}

JsonMatcher::Act JsonMatcher::on_root(JsonStackSet& out, size_t start, uint8_t b) const {
  JsonFrame& f = out.frames_.back();
  bool ok = false;
  if (whitespace(f, b, ok)) return ok ? Act::kOk : Act::kFail;
  if (f.phase == kAfter) return Act::kFail;
  f.phase = kAfter;
  start_value(out, start, f.node, b, 0);
  return Act::kDone;
}

JsonMatcher::Act JsonMatcher::on_object(JsonStackSet& out, size_t start, uint8_t b) const {
  JsonFrame& f = out.frames_.back();
  const GrammarNode& n = g_.node(f.node);
  bool ok = false;
  if (whitespace(f, b, ok)) return ok ? Act::kOk : Act::kFail;
  const bool key_possible = (all_properties(n) & ~f.mask) != 0 || n.additional >= 0;
  const bool close_ok = (n.required & ~f.mask) == 0;
  switch (f.phase) {
    case kObjOpen:
    case kObjComma:
      if (b == '"' && key_possible) {
        f.phase = kObjKey;
        JsonFrame key{.node = f.node, .kind = FrameKind::kKey, .mask = all_properties(n)};
        return push(out, start, key) ? Act::kOk : Act::kFail;
      }
      if (b == '}' && f.phase == kObjOpen && close_ok) return Act::kClose;
      return Act::kFail;
    case kObjColon:
      if (b != ':') return Act::kFail;
      f.phase = kObjValue;
      return Act::kOk;
    case kObjValue:
      f.phase = kObjAfter;
      start_value(out, start, int32_t(f.b), b, 0);
      return Act::kDone;
    case kObjAfter:
      if (b == ',' && key_possible) {
        f.phase = kObjComma;
        return Act::kOk;
      }
      if (b == '}' && close_ok) return Act::kClose;
      return Act::kFail;
  }
  return Act::kFail;
}

// A key of the object below. Objects with declared properties match the key's raw bytes against
// their canonical names; a key that names no declared property is an "additional" key (allowed by
// additionalProperties) and may not use \u or \/ escapes, which could spell a declared name.
JsonMatcher::Act JsonMatcher::on_key(JsonStackSet& out, size_t start, uint8_t b) const {
  JsonFrame& k = out.frames_.back();
  JsonFrame& obj = out.frames_[out.frames_.size() - 2];
  const GrammarNode& n = g_.node(obj.node);
  const bool was_escape = k.sub == kEscape;
  const Scan r = scan_byte(k.sub, k.a, b);
  if (r == Scan::kFail) return Act::kFail;
  const uint64_t unseen = all_properties(n) & ~obj.mask;
  if (r != Scan::kClose) {
    if (n.properties.empty()) return Act::kOk;
    if (was_escape && (b == 'u' || b == '/')) k.phase |= kKeyTainted;
    uint64_t next = 0;
    for (uint64_t m = k.mask; m; m &= m - 1) {
      const int p = __builtin_ctzll(m);
      const std::string& name = n.properties[size_t(p)].key;
      if (k.b < name.size() && uint8_t(name[k.b]) == b) next |= uint64_t(1) << p;
    }
    k.mask = next;
    ++k.b;
    const bool additional = n.additional >= 0 && !(k.phase & kKeyTainted);
    return (next & unseen) != 0 || additional ? Act::kOk : Act::kFail;
  }
  int32_t value = -1;
  for (uint64_t m = k.mask; m && value < 0; m &= m - 1) {
    const int p = __builtin_ctzll(m);
    if (n.properties[size_t(p)].key.size() != k.b) continue;
    if (!(unseen >> p & 1)) return Act::kFail;  // written before (or unsatisfiable)
    value = n.properties[size_t(p)].value;
    obj.mask |= uint64_t(1) << p;
  }
  if (value < 0) {
    if (n.additional < 0 || (k.phase & kKeyTainted)) return Act::kFail;
    value = n.additional;
  }
  obj.phase = kObjColon;
  obj.b = uint32_t(value);
  out.frames_.pop_back();
  return Act::kOk;
}

JsonMatcher::Act JsonMatcher::on_array(JsonStackSet& out, size_t start, uint8_t b) const {
  JsonFrame& f = out.frames_.back();
  const GrammarNode& n = g_.node(f.node);
  bool ok = false;
  if (whitespace(f, b, ok)) return ok ? Act::kOk : Act::kFail;
  const bool counted = n.min_items > 0 || n.max_items != kUnbounded;
  if (f.phase == kArrAfter) {
    if (b == ',' && (!counted || f.a < n.max_items)) {
      f.phase = kArrComma;
      return Act::kOk;
    }
    if (b == ']' && f.a >= n.min_items) return Act::kClose;
    return Act::kFail;
  }
  if (f.phase == kArrOpen && b == ']') return n.min_items == 0 ? Act::kClose : Act::kFail;
  if (n.max_items == 0) return Act::kFail;
  f.phase = kArrAfter;
  if (counted) ++f.a;
  start_value(out, start, n.items, b, 0);
  return Act::kDone;
}

JsonMatcher::Act JsonMatcher::on_string(JsonFrame& f, uint8_t b) const {
  const GrammarNode& n = g_.node(f.node);
  const Scan r = scan_byte(f.sub, f.b, b);
  const bool counted = n.min_length > 0 || n.max_length != kUnbounded;
  switch (r) {
    case Scan::kFail:
      return Act::kFail;
    case Scan::kCont:
      return Act::kOk;
    case Scan::kChar:
      if (!counted) return Act::kOk;
      if (f.a >= n.max_length) return Act::kFail;
      ++f.a;
      return Act::kOk;
    case Scan::kClose:
      return counted && f.a < n.min_length ? Act::kFail : Act::kClose;
  }
  return Act::kFail;
}

JsonMatcher::Act JsonMatcher::on_number(JsonFrame& f, uint8_t b) const {
  const int s = number_next(f.phase, b, g_.node(f.node).kind == NodeKind::kInteger);
  if (s >= 0) {
    const int64_t digits = digits_after(f.phase, s, f.a);
    if (digits < 0) return Act::kFail;
    f.phase = uint8_t(s);
    f.a = uint32_t(digits);
    return Act::kOk;
  }
  return number_complete(f.phase) ? Act::kPop : Act::kFail;
}

JsonMatcher::Act JsonMatcher::on_literal(JsonFrame& f, uint8_t b) const {
  const LiteralTrieNode& t = g_.literal(int32_t(f.a));
  for (const auto& [c, child] : t.next)
    if (c == b) {
      f.a = uint32_t(child);
      return Act::kOk;
    }
  return t.terminal ? Act::kPop : Act::kFail;
}

}  // namespace ug
