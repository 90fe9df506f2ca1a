#include "tokenizer/tool_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace ug {
namespace {

using nlohmann::json;

// Deeper nesting than this is rejected instead of recursing until the stack runs out.
constexpr int kMaxDepth = 256;

// Decodes the UTF-8 scalar starting at s[i]; returns its length, or 0 if invalid.
size_t utf8_decode(std::string_view s, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len = b0 < 0x80           ? 1
               : (b0 >> 5) == 0x6  ? 2
               : (b0 >> 4) == 0xE  ? 3
               : (b0 >> 3) == 0x1E ? 4
                                   : 0;
  if (len == 0 || i + len > s.size()) return 0;
  cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return len;
}

// Python str.isspace() for one code point.
bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string py_repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const char quote = has_single && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '\\' || ch == quote) {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  return out + quote;
}

std::string py_repr(const json& v) {
  return v.is_string() ? py_repr_string(v.get_ref<const std::string&>()) : py_str(v);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Jinja item lookup: value[key] when value is a mapping holding key, else "undefined".
const json* get(const json& value, const char* key) {
  if (!value.is_object()) return nullptr;
  auto it = value.find(key);
  return it == value.end() ? nullptr : &*it;
}

// `{{ x }}` of a possibly undefined value: undefined prints as "".
std::string jinja_str(const json* v) { return v ? py_str(*v) : std::string(); }

std::string quoted(const std::string& s) {
  return std::string(kToolQuote) + s + std::string(kToolQuote);
}

void check_depth(int depth) {
  UG_CHECK(depth <= kMaxDepth, "tool JSON is nested deeper than {} levels", kMaxDepth);
}

std::string format_argument_at(const json& v, bool escape_keys, int depth) {
  check_depth(depth);
  if (v.is_string()) return quoted(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, value] : dictsort(v)) {
      if (!first) out += ',';
      first = false;
      out += escape_keys ? quoted(key) : key;
      out += ':';
      out += format_argument_at(*value, escape_keys, depth + 1);
    }
    return out + "}";
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ',';
      out += format_argument_at(v[i], escape_keys, depth + 1);
    }
    return out + "]";
  }
  return py_str(v);
}

// `required:[<|"|>a<|"|>,…]` body: the items of a JSON array, each printed with str().
std::string quoted_list(const json& list, const std::string& where) {
  UG_CHECK(list.is_array(), "{}: expected an array of names, got {}", where, list.type_name());
  std::string out;
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    out += quoted(py_str(list[i]));
  }
  return out;
}

std::string format_parameters(const json& props, bool filter_keys, const std::string& where,
                              int depth);

// The `items:{…}` block of an ARRAY property.
std::string format_items(const json& items, const std::string& where, int depth) {
  std::string out;
  bool first = true;
  for (const auto& [key, value] : dictsort(items)) {
    if (value->is_null()) continue;
    if (!first) out += ',';
    first = false;
    const std::string at = where + ".items." + key;
    if (key == "properties") {
      out += "properties:{";
      if (value->is_object()) out += format_parameters(*value, false, at, depth + 1);
      out += "}";
    } else if (key == "required") {
      out += "required:[" + quoted_list(*value, at) + "]";
    } else if (key == "type") {
      if (value->is_string()) {
        out += "type:" + format_argument(ascii_upper(value->get<std::string>()), true);
      } else {
        UG_CHECK(value->is_array(), "{}: expected a string or an array, got {}", at,
                 value->type_name());
        json upper = json::array();
        for (const auto& t : *value) upper.push_back(ascii_upper(py_str(t)));
        out += "type:" + format_argument(upper, true);
      }
    } else {
      out += key + ":" + format_argument_at(*value, true, depth + 1);
    }
  }
  return out;
}

// One property schema: `{description:…,enum:…,items:…,nullable:true,properties:…,type:…}`.
std::string format_property(const json& value, const std::string& where, int depth) {
  std::string out = "{";
  bool add_comma = false;
  auto comma = [&] {
    if (add_comma) out += ',';
    add_comma = true;
  };
  if (const json* d = get(value, "description"); d && py_truthy(*d)) {
    out += "description:" + quoted(py_str(*d));
    add_comma = true;
  }
  const std::string type = ascii_upper(jinja_str(get(value, "type")));
  if (type == "STRING") {
    if (const json* e = get(value, "enum"); e && py_truthy(*e)) {
      comma();
      out += "enum:" + format_argument_at(*e, true, depth + 1);
    }
  } else if (type == "ARRAY") {
    if (const json* items = get(value, "items"); items && items->is_object() && !items->empty()) {
      comma();
      out += "items:{" + format_items(*items, where, depth + 1) + "}";
    }
  }
  if (const json* n = get(value, "nullable"); n && py_truthy(*n)) {
    comma();
    out += "nullable:true";
  }
  if (type == "OBJECT") {
    // A nested object without "properties" lists its own non-schema keys as properties.
    const json* p = get(value, "properties");
    comma();
    if (p && p->is_object())
      out += "properties:{" + format_parameters(*p, false, where, depth + 1) + "}";
    else
      out += "properties:{" + format_parameters(value, true, where, depth + 1) + "}";
    if (const json* r = get(value, "required"); r && py_truthy(*r)) {
      comma();
      out += "required:[" + quoted_list(*r, where + ".required") + "]";
    }
  }
  comma();
  return out + "type:" + quoted(type) + "}";
}

// Template macro format_parameters: `key:{…}` for each property, sorted. With filter_keys the
// JSON-schema keywords are skipped (used when an object's own keys stand in for properties).
std::string format_parameters(const json& props, bool filter_keys, const std::string& where,
                              int depth) {
  check_depth(depth);
  static const char* const kStandardKeys[] = {"description", "type", "properties", "required",
                                              "nullable"};
  std::string out;
  bool first = true;
  for (const auto& [key, value] : dictsort(props)) {
    if (filter_keys &&
        std::find_if(std::begin(kStandardKeys), std::end(kStandardKeys),
                     [&name = key](const char* k) { return name == k; }) != std::end(kStandardKeys))
      continue;
    if (!first) out += ',';
    first = false;
    out += key + ":" + format_property(*value, where + "." + key, depth + 1);
  }
  return out;
}

std::string function_object_name(const json& fn, const std::string& where) {
  const json* name = get(fn, "name");
  UG_CHECK(name && name->is_string(), "{}.function.name: expected a string, got {}", where,
           name ? name->type_name() : "nothing");
  return name->get<std::string>();
}

const json& function_object(const json& item, const std::string& where) {
  const json* fn = get(item, "function");
  UG_CHECK(fn && fn->is_object(),
           "{}: expected an object with a \"function\" object (OpenAI style), got {}", where,
           fn                 ? fn->type_name()
           : item.is_object() ? "no \"function\" key"
                              : item.type_name());
  return *fn;
}

}  // namespace

std::string_view py_strip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    char32_t cp = 0;
    size_t len = utf8_decode(text, begin, cp);
    if (len == 0 || !py_isspace(cp)) break;
    begin += len;
  }
  size_t end = text.size();
  while (end > begin) {
    size_t start = end - 1;  // walk back to the lead byte of the last scalar
    while (start > begin && end - start < 4 &&
           (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
      --start;
    char32_t cp = 0;
    size_t len = utf8_decode(text, start, cp);
    if (len != end - start || !py_isspace(cp)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

std::string py_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.25e+03": shortest round-trip digits
  const bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  const size_t e_pos = sci.find('e');
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {  // Python switches to exponent form here
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (exponent < 0) {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    const auto int_len = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_len) {
      out += digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return out;
}

std::string py_str(const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      return value.get<std::string>();
    case json::value_t::boolean:
      return value.get<bool>() ? "True" : "False";
    case json::value_t::null:
      return "None";
    case json::value_t::number_integer:
      return std::to_string(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(value.get<std::uint64_t>());
    case json::value_t::number_float:
      return py_float_repr(value.get<double>());
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + py_repr(value[i]);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : value.items()) {
        out += (first ? "" : ", ") + py_repr_string(k) + ": " + py_repr(v);
        first = false;
      }
      return out + "}";
    }
    default:
      return "";
  }
}

bool py_truthy(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return false;
    case json::value_t::boolean:
      return value.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return value.get<double>() != 0.0;
    case json::value_t::string:
    case json::value_t::array:
    case json::value_t::object:
      return !value.empty() && !(value.is_string() && value.get_ref<const std::string&>().empty());
    default:
      return false;
  }
}

std::string ascii_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::vector<std::pair<std::string, const json*>> dictsort(const json& object) {
  std::vector<std::pair<std::string, const json*>> items;
  if (!object.is_object()) return items;
  for (auto it = object.begin(); it != object.end(); ++it) items.emplace_back(it.key(), &*it);
  std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return ascii_lower(a.first) < ascii_lower(b.first);
  });
  return items;
}

std::string format_argument(const json& value, bool escape_keys) {
  return format_argument_at(value, escape_keys, 0);
}

std::string format_function_declaration(const json& tool, const std::string& where) {
  const json& fn = function_object(tool, where);
  const std::string name = function_object_name(fn, where);
  std::string out =
      "declaration:" + name + "{description:" + quoted(jinja_str(get(fn, "description")));
  if (const json* params = get(fn, "parameters"); params && py_truthy(*params)) {
    // Faithful to the template: the block is closed only by the `type` entry.
    out += ",parameters:{";
    if (const json* props = get(*params, "properties"); props && py_truthy(*props)) {
      UG_CHECK(props->is_object(), "{}.function.parameters.properties: expected an object, got {}",
               where, props->type_name());
      out += "properties:{" + format_parameters(*props, false, where + ".parameters", 0) + "},";
    }
    if (const json* req = get(*params, "required"); req && py_truthy(*req))
      out += "required:[" + quoted_list(*req, where + ".function.parameters.required") + "],";
    if (const json* type = get(*params, "type"); type && py_truthy(*type))
      out += "type:" + quoted(ascii_upper(py_str(*type))) + "}";
  }
  if (const json* resp = get(fn, "response")) {
    out += ",response:{";
    if (const json* d = get(*resp, "description"); d && py_truthy(*d))
      out += "description:" + quoted(py_str(*d)) + ",";
    if (ascii_upper(jinja_str(get(*resp, "type"))) == "OBJECT")
      out += "type:" + quoted("OBJECT") + "}";
  }
  return out + "}";
}

std::string format_tool_call(const json& call, const std::string& where) {
  const json& fn = function_object(call, where);
  std::string out = "<|tool_call>call:" + function_object_name(fn, where) + "{";
  if (const json* args = get(fn, "arguments")) {
    if (args->is_object()) {
      bool first = true;
      for (const auto& [key, value] : dictsort(*args)) {
        if (!first) out += ',';
        first = false;
        out += key + ":" + format_argument(*value, false);
      }
    } else if (args->is_string()) {
      out += args->get<std::string>();  // the template inserts a JSON string verbatim
    } else {
      UG_CHECK(args->is_null(), "{}.function.arguments: expected an object or a string, got {}",
               where, args->type_name());
    }
  }
  return out + "}<tool_call|>";
}

std::string format_tool_response(std::string_view name, const json& response) {
  std::string out = "<|tool_response>response:" + std::string(name) + "{";
  if (response.is_object()) {
    bool first = true;
    for (const auto& [key, value] : dictsort(response)) {
      if (!first) out += ',';
      first = false;
      out += key + ":" + format_argument(*value, false);
    }
  } else {
    out += "value:" + format_argument(response, false);
  }
  return out + "}<tool_response|>";
}

// ---------------------------------------------------------------------------------------------
// DSL parser

namespace {

struct DslParser {
  std::string_view s;
  size_t pos;

  [[noreturn]] void error(const std::string& what) const {
    fail("tool DSL: offset {}: {}", pos, what);
  }
  void skip_ws() {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\t' || s[pos] == '\r'))
      ++pos;
  }
  bool at(std::string_view lit) const { return s.substr(pos, lit.size()) == lit; }

  std::string quote_string() {  // at <|"|>
    pos += kToolQuote.size();
    const size_t end = s.find(kToolQuote, pos);
    if (end == std::string_view::npos) error("unterminated <|\"|> string");
    std::string out(s.substr(pos, end - pos));
    pos = end + kToolQuote.size();
    return out;
  }

  std::string json_string() {  // at '"'
    size_t i = pos + 1;
    while (i < s.size() && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
    if (i >= s.size()) error("unterminated \"string\"");
    try {
      std::string out = json::parse(s.substr(pos, i + 1 - pos)).get<std::string>();
      pos = i + 1;
      return out;
    } catch (const json::exception&) {
      error("invalid escape in \"string\"");
    }
  }

  std::string key() {
    skip_ws();
    if (at(kToolQuote)) return quote_string();
    if (pos < s.size() && s[pos] == '"') return json_string();
    const size_t start = pos;
    while (pos < s.size() && s[pos] != ':' && !std::strchr("{}[],", s[pos])) ++pos;
    std::string k(py_strip(s.substr(start, pos - start)));
    if (k.empty()) error("expected a key");
    return k;
  }

  json scalar() {
    const size_t start = pos;
    while (pos < s.size() && !std::strchr(",}]", s[pos]) && !at("<|") && !at("<tool_call|>")) ++pos;
    const std::string word(py_strip(s.substr(start, pos - start)));
    if (word.empty()) error("expected a value");
    if (word == "true" || word == "True") return true;
    if (word == "false" || word == "False") return false;
    if (word == "null" || word == "None") return nullptr;
    if (auto num = number(word); !num.is_null()) return num;
    return word;  // an unquoted word: keep it as text rather than fail
  }

  static json number(const std::string& w) {
    size_t i = w[0] == '-' ? 1 : 0;
    const size_t digits_start = i;
    while (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) ++i;
    if (i == digits_start) return nullptr;
    const bool integral = i == w.size();
    if (integral) {
      std::int64_t v = 0;
      auto r = std::from_chars(w.data(), w.data() + w.size(), v);
      if (r.ec == std::errc() && r.ptr == w.data() + w.size()) return v;
    }
    double d = 0;
    auto r = std::from_chars(w.data(), w.data() + w.size(), d);
    if (r.ec != std::errc() || r.ptr != w.data() + w.size()) return nullptr;
    return d;
  }

  json value(int depth) {
    if (depth > kMaxDepth) error(fmt::format("nested deeper than {} levels", kMaxDepth));
    skip_ws();
    if (pos >= s.size()) error("expected a value, got the end of the text");
    if (at(kToolQuote)) return quote_string();
    if (s[pos] == '"') return json_string();
    if (s[pos] == '{') return object(depth);
    if (s[pos] == '[') return array(depth);
    return scalar();
  }

  json object(int depth) {
    ++pos;  // '{'
    json out = json::object();
    for (;;) {
      skip_ws();
      if (pos < s.size() && s[pos] == '}') break;
      std::string k = key();
      skip_ws();
      if (pos >= s.size() || s[pos] != ':') error("expected ':' after key '" + k + "'");
      ++pos;
      out[k] = value(depth + 1);
      skip_ws();
      if (pos < s.size() && s[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos >= s.size() || s[pos] != '}') error("expected ',' or '}' in an object");
      break;
    }
    ++pos;
    return out;
  }

  json array(int depth) {
    ++pos;  // '['
    json out = json::array();
    for (;;) {
      skip_ws();
      if (pos < s.size() && s[pos] == ']') break;
      out.push_back(value(depth + 1));
      skip_ws();
      if (pos < s.size() && s[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos >= s.size() || s[pos] != ']') error("expected ',' or ']' in a list");
      break;
    }
    ++pos;
    return out;
  }
};

}  // namespace

json parse_tool_value(std::string_view text, size_t& pos) {
  DslParser p{text, pos};
  json v = p.value(0);
  pos = p.pos;
  return v;
}

}  // namespace ug
