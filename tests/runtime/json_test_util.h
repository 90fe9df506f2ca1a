// Helpers of the JSON constraint tests: a small, independent validator of the supported JSON Schema
// subset (the check applied to every constrained output), schema text -> grammar, and shortcuts over
// JsonMatcher.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "runtime/json_constraint/json_grammar.h"
#include "runtime/json_constraint/json_matcher.h"

namespace ug::test {

using nlohmann::json;

inline size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

inline bool json_has_type(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

// Validates `v` against `s` (the subset docs/server.md lists; `root` resolves "#/..." refs).
inline bool validate(const json& v, const json& s, const json& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    std::string ref = s["$ref"];
    return validate(v, root.at(json::json_pointer(ref.substr(1))), root);
  }
  if (s.contains("allOf")) return validate(v, s["allOf"][0], root);
  const bool nullable = s.value("nullable", false);
  if (nullable && v.is_null()) return true;
  for (const char* k : {"anyOf", "oneOf"})
    if (s.contains(k)) {
      for (const json& alt : s[k])
        if (validate(v, alt, root)) return true;
      return false;
    }
  if (s.contains("enum")) {
    for (const json& e : s["enum"])
      if (e == v) return true;
    return false;
  }
  if (s.contains("const")) return s["const"] == v;
  if (s.contains("type")) {
    json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
    bool ok = false;
    for (const json& t : types) ok |= json_has_type(v, t.get<std::string>());
    if (!ok) return false;
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const json& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return false;
    for (const auto& [k, x] : v.items()) {
      if (props.contains(k)) {
        if (!validate(x, props[k], root)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!validate(x, s["additionalProperties"], root)) return false;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
    if (s.contains("items"))
      for (const json& x : v)
        if (!validate(x, s["items"], root)) return false;
  }
  if (v.is_string()) {
    const size_t n = code_points(v.get<std::string>());
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return false;
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return false;
  }
  return true;
}

// Whether `text` parses as JSON and validates against the schema `doc`: the check every completed
// constrained output must pass.
inline ::testing::AssertionResult parses_and_validates(const std::string& text, const json& doc) {
  const json v = json::parse(text, nullptr, false);
  if (v.is_discarded()) return ::testing::AssertionFailure() << "not JSON: " << text;
  if (!validate(v, doc, doc)) return ::testing::AssertionFailure() << "does not validate: " << text;
  return ::testing::AssertionSuccess();
}

// The grammar of a schema given as JSON text.
inline std::shared_ptr<const JsonGrammar> schema(const std::string& text) {
  return JsonGrammar::from_schema(json::parse(text), "schema");
}

struct Matched {
  bool viable = false;    // a viable prefix
  bool complete = false;  // a complete value
};

inline Matched match(const JsonGrammar& g, std::string_view text) {
  JsonMatcher m(g);
  JsonStackSet s = m.advance(m.initial(), text);
  return {!s.empty(), !s.empty() && m.accepts(s)};
}

// Random byte-level walk through the grammar: every state reached must accept or have a viable next
// byte (liveness); after `grow` bytes it steers towards closing. Returns the text when it
// completed.
inline std::optional<std::string> random_walk(const JsonGrammar& g, std::mt19937& rng, int grow) {
  JsonMatcher m(g);
  JsonStackSet s = m.initial(), next;
  std::string text;
  const std::string closing = "\"}]0ntf:,a";
  for (int step = 0; step < 4000; ++step) {
    if (m.accepts(s) && (step >= grow || rng() % 8 == 0)) return text;
    std::vector<uint8_t> ok;
    for (int b = 0; b < 256; ++b) {
      m.step(s, uint8_t(b), next);
      if (!next.empty()) ok.push_back(uint8_t(b));
    }
    if (ok.empty()) {
      EXPECT_TRUE(m.accepts(s)) << "dead end after " << json(text).dump();
      return m.accepts(s) ? std::optional<std::string>(text) : std::nullopt;
    }
    uint8_t b = ok[rng() % ok.size()];
    if (step >= grow) {
      for (char c : closing)
        if (std::find(ok.begin(), ok.end(), uint8_t(c)) != ok.end()) {
          b = uint8_t(c);
          break;
        }
      // Inside a number ":" etc. are not viable; prefer ending it over growing it.
    }
    m.step(s, b, next);
    std::swap(s, next);
    text.push_back(char(b));
  }
  return std::nullopt;
}

}  // namespace ug::test
