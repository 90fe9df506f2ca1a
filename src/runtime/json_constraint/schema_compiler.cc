// JSON Schema (the subset of docs/server.md) -> JsonGrammar nodes. Every keyword is either
// compiled, accepted as an annotation, or refused with a SchemaError naming its JSON path.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "runtime/json_constraint/json_grammar.h"

namespace ug {

using nlohmann::json;

namespace {

// Keywords with no effect on which texts are valid.
const std::set<std::string, std::less<>> kAnnotations = {
    "title",   "description", "$schema",  "$id",       "$comment", "examples",
    "default", "deprecated",  "readOnly", "writeOnly", "$defs",    "definitions",
};
const std::set<std::string, std::less<>> kObjectWords = {"properties", "required",
                                                         "additionalProperties"};
const std::set<std::string, std::less<>> kArrayWords = {"items", "minItems", "maxItems",
                                                        "uniqueItems"};
const std::set<std::string, std::less<>> kStringWords = {"minLength", "maxLength"};
const std::set<std::string, std::less<>> kOtherWords = {"type",  "enum",  "const", "anyOf",
                                                        "oneOf", "allOf", "$ref",  "nullable"};

bool is_supported(const std::string& k) {
  return kAnnotations.count(k) || kObjectWords.count(k) || kArrayWords.count(k) ||
         kStringWords.count(k) || kOtherWords.count(k);
}

std::string unsupported_hint(const std::string& k) {
  if (k == "pattern" || k == "format" || k == "patternProperties" || k == "propertyNames")
    return " (regular expressions and formats cannot be enforced yet)";
  if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum" ||
      k == "multipleOf")
    return " (numeric ranges cannot be enforced yet)";
  return "";
}

}  // namespace

class SchemaCompiler {
 public:
  SchemaCompiler(JsonGrammar& g, const json& document) : g_(g), doc_(document) {}

  int32_t compile(const json& s, const std::string& path, int depth);

 private:
  [[noreturn]] void fail_at(const std::string& path, const std::string& message) const {
    throw SchemaError(path, message);
  }
  // Valid JSON Schema this engine does not enforce.
  [[noreturn]] void unsupported(const std::string& path, const std::string& message) const {
    throw SchemaError(path, message, true);
  }
  int32_t add(GrammarNode n, const std::string& path) {
    if (int32_t(g_.nodes_.size()) >= g_.limits_.max_nodes)
      unsupported(
          path, fmt::format("the schema is too large (more than {} nodes)", g_.limits_.max_nodes));
    return g_.add_node(std::move(n));
  }
  void check_keywords(const json& s, const std::string& path) const;
  int32_t ref(const json& s, const std::string& path, int depth);
  int32_t alternation(const json& s, const std::string& path, int depth);
  int32_t literals(const json& s, const std::vector<std::string>& types, const std::string& path);
  std::vector<std::string> types_of(const json& s, const std::string& path) const;
  int32_t typed(const json& s, const std::string& type, const std::string& path, int depth);
  int32_t object(const json& s, const std::string& path, int depth);
  int32_t array(const json& s, const std::string& path, int depth);
  int32_t string(const json& s, const std::string& path);
  uint32_t count(const json& s, const char* key, const std::string& path) const;

  JsonGrammar& g_;
  const json& doc_;
  std::map<std::string, int32_t> refs_;  // JSON pointer -> node
};

void SchemaCompiler::check_keywords(const json& s, const std::string& path) const {
  for (const auto& [k, v] : s.items())
    if (!is_supported(k))
      unsupported(path + "." + k, fmt::format("JSON Schema keyword '{}' is not supported{}", k,
                                              unsupported_hint(k)));
}

int32_t SchemaCompiler::compile(const json& s, const std::string& path, int depth) {
  if (depth > g_.limits_.max_schema_depth)
    unsupported(path,
                fmt::format("the schema nests deeper than {} levels", g_.limits_.max_schema_depth));
  if (s.is_boolean()) {
    if (s.get<bool>()) return JsonGrammar::kAnyValue;
    fail_at(path, "the schema false matches no value");
  }
  if (!s.is_object()) fail_at(path, "expected a schema (a JSON object or a boolean)");
  check_keywords(s, path);
  auto constraint_siblings = [&](const char* self) {  // only annotations may sit beside `self`
    for (const auto& [k, v] : s.items())
      if (k != self && !kAnnotations.count(k))
        unsupported(path + "." + k, fmt::format("'{}' next to '{}' is not supported", k, self));
  };
  if (s.contains("$ref")) {
    constraint_siblings("$ref");
    return ref(s, path, depth);
  }
  if (s.contains("allOf")) {
    constraint_siblings("allOf");
    const json& all = s["allOf"];
    if (!all.is_array() || all.size() != 1)
      unsupported(path + ".allOf", "only an allOf with exactly one schema is supported");
    return compile(all[0], path + ".allOf[0]", depth + 1);
  }
  if (s.contains("anyOf") || s.contains("oneOf")) return alternation(s, path, depth);
  const std::vector<std::string> types = types_of(s, path);
  if (s.contains("enum") || s.contains("const")) return literals(s, types, path);
  if (types.empty()) return JsonGrammar::kAnyValue;
  std::vector<int32_t> alts;
  for (const std::string& t : types) alts.push_back(typed(s, t, path, depth));
  if (alts.size() == 1) return alts[0];
  return add({.kind = NodeKind::kAnyOf, .alternatives = alts}, path);
}

int32_t SchemaCompiler::ref(const json& s, const std::string& path, int depth) {
  const json& r = s["$ref"];
  if (!r.is_string()) fail_at(path + ".$ref", "expected a string");
  const std::string target = r.get<std::string>();
  if (target.empty() || target[0] != '#')
    unsupported(path + ".$ref", fmt::format("only references inside the schema (\"#/...\") are "
                                            "supported, got \"{}\"",
                                            target));
  if (auto it = refs_.find(target); it != refs_.end()) return it->second;
  const json* at = nullptr;
  try {
    json::json_pointer ptr(target.substr(1));
    if (doc_.contains(ptr)) at = &doc_.at(ptr);
  } catch (const json::exception&) {
  }
  if (!at)
    fail_at(path + ".$ref", fmt::format("\"{}\" does not name a part of the schema", target));
  // A one-way alternation as the reference's node, created before its target is compiled, so that
  // recursive schemas refer back to it.
  const int32_t node = add({.kind = NodeKind::kAnyOf}, path);
  refs_[target] = node;
  const int32_t inner = compile(*at, path + ".$ref(" + target + ")", depth + 1);
  g_.nodes_[size_t(node)].alternatives = {inner};
  return node;
}

int32_t SchemaCompiler::alternation(const json& s, const std::string& path, int depth) {
  const char* key = s.contains("anyOf") ? "anyOf" : "oneOf";
  for (const auto& [k, v] : s.items())
    if (k != key && !kAnnotations.count(k) && k != "nullable")
      unsupported(path + "." + k, fmt::format("'{}' next to '{}' is not supported", k, key));
  const json& list = s[key];
  if (!list.is_array() || list.empty())
    fail_at(path + "." + key, "expected a non-empty array of schemas");
  GrammarNode n{.kind = NodeKind::kAnyOf};
  for (size_t i = 0; i < list.size(); ++i)
    n.alternatives.push_back(compile(list[i], fmt::format("{}.{}[{}]", path, key, i), depth + 1));
  if (s.value("nullable", false))
    n.alternatives.push_back(literals(json{{"const", nullptr}}, {}, path));
  return add(std::move(n), path);
}

namespace {

// Whether a value has a JSON Schema type, for filtering enum / const by "type".
bool has_type(const json& v, const std::string& t) {
  if (t == "integer")
    return v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) &&
                                     std::floor(v.get<double>()) == v.get<double>());
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  return false;
}

}  // namespace

int32_t SchemaCompiler::literals(const json& s, const std::vector<std::string>& types,
                                 const std::string& path) {
  const bool is_enum = s.contains("enum");
  const char* key = is_enum ? "enum" : "const";
  for (const auto& [k, v] : s.items())
    if (k != key && k != "type" && k != "nullable" && !kAnnotations.count(k))
      unsupported(path + "." + k, fmt::format("'{}' next to '{}' is not supported", k, key));
  if (is_enum && s.contains("const"))
    unsupported(path + ".const", "'const' next to 'enum' is not supported");
  json values = is_enum ? s["enum"] : json::array({s["const"]});
  if (!values.is_array() || values.empty())
    fail_at(path + "." + key, "expected a non-empty array of values");
  std::vector<std::string> texts;
  for (const json& v : values) {
    bool ok = types.empty() || std::any_of(types.begin(), types.end(),
                                           [&](const std::string& t) { return has_type(v, t); });
    if (ok) texts.push_back(v.dump());
  }
  if (s.value("nullable", false)) texts.push_back("null");
  if (texts.empty()) fail_at(path + "." + key, "no value has the schema's type");
  std::sort(texts.begin(), texts.end());
  texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
  GrammarNode n{.kind = NodeKind::kLiteral};
  n.literal = g_.add_literals(texts);
  return add(std::move(n), path);
}

std::vector<std::string> SchemaCompiler::types_of(const json& s, const std::string& path) const {
  static const std::set<std::string> known = {"object",  "array",   "string", "number",
                                              "integer", "boolean", "null"};
  std::vector<std::string> types;
  if (const auto it = s.find("type"); it != s.end()) {
    json list = it->is_array() ? *it : json::array({*it});
    if (list.empty()) fail_at(path + ".type", "expected a type name or a non-empty array of them");
    for (const json& t : list) {
      if (!t.is_string() || !known.count(t.get<std::string>()))
        fail_at(path + ".type", fmt::format("unknown type {} (expected object, array, string, "
                                            "number, integer, boolean or null)",
                                            t.dump()));
      if (std::find(types.begin(), types.end(), t.get<std::string>()) == types.end())
        types.push_back(t.get<std::string>());
    }
  } else {  // no "type": the types its keywords describe (none: any value)
    for (const auto& [k, v] : s.items()) {
      const char* t = kObjectWords.count(k)   ? "object"
                      : kArrayWords.count(k)  ? "array"
                      : kStringWords.count(k) ? "string"
                                              : nullptr;
      if (t && std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
    }
  }
  if (s.value("nullable", false) && std::find(types.begin(), types.end(), "null") == types.end() &&
      !types.empty())
    types.push_back("null");
  // A keyword for a type the schema cannot have would be silently ignored: refuse it.
  auto wants = [&](const char* t) {
    return std::find(types.begin(), types.end(), t) != types.end();
  };
  for (const auto& [k, v] : s.items()) {
    const char* t = kObjectWords.count(k)   ? "object"
                    : kArrayWords.count(k)  ? "array"
                    : kStringWords.count(k) ? "string"
                                            : nullptr;
    if (t && !wants(t))
      fail_at(path + "." + k, fmt::format("'{}' applies to type {}, which the schema's type "
                                          "does not include",
                                          k, t));
  }
  return types;
}

int32_t SchemaCompiler::typed(const json& s, const std::string& type, const std::string& path,
                              int depth) {
  if (type == "object") return object(s, path, depth);
  if (type == "array") return array(s, path, depth);
  if (type == "string") return string(s, path);
  if (type == "number") return JsonGrammar::kAnyNumber;
  if (type == "integer") return JsonGrammar::kAnyInteger;
  GrammarNode n{.kind = NodeKind::kLiteral};
  n.literal = g_.add_literals(type == "boolean" ? std::vector<std::string>{"false", "true"}
                                                : std::vector<std::string>{"null"});
  return add(std::move(n), path);
}

int32_t SchemaCompiler::object(const json& s, const std::string& path, int depth) {
  GrammarNode n{.kind = NodeKind::kObject};
  const json* props = s.contains("properties") ? &s["properties"] : nullptr;
  if (props && !props->is_object()) fail_at(path + ".properties", "expected an object of schemas");
  if (props && props->size() > kMaxProperties)
    unsupported(path + ".properties",
                fmt::format("at most {} properties per object are supported, got {}",
                            kMaxProperties, props->size()));
  if (props)
    for (const auto& [name, sub] : props->items()) {
      const std::string quoted = json(name).dump();
      n.properties.push_back({.key = quoted.substr(1, quoted.size() - 2),
                              .value = compile(sub, path + ".properties." + name, depth + 1)});
    }
  if (const auto it = s.find("required"); it != s.end()) {
    if (!it->is_array()) fail_at(path + ".required", "expected an array of property names");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& r = (*it)[i];
      if (!r.is_string()) fail_at(fmt::format("{}.required[{}]", path, i), "expected a string");
      const std::string quoted = r.dump();
      const std::string key = quoted.substr(1, quoted.size() - 2);
      auto p = std::find_if(n.properties.begin(), n.properties.end(),
                            [&](const ObjectProperty& q) { return q.key == key; });
      if (p == n.properties.end()) {  // required but not declared: any value
        if (n.properties.size() >= kMaxProperties)
          unsupported(path + ".required",
                      fmt::format("at most {} properties per object", kMaxProperties));
        n.properties.push_back({.key = key, .value = JsonGrammar::kAnyValue});
        p = n.properties.end() - 1;
      }
      p->required = true;
    }
  }
  for (size_t k = 0; k < n.properties.size(); ++k)
    if (n.properties[k].required) n.required |= uint64_t(1) << k;
  // additionalProperties: absent = no other keys when properties are declared (keeps the reply on
  // the declared keys; still valid against the schema), any keys when none are.
  n.additional = n.properties.empty() ? JsonGrammar::kAnyValue : -1;
  if (const auto it = s.find("additionalProperties"); it != s.end()) {
    if (it->is_boolean())
      n.additional = it->get<bool>() ? JsonGrammar::kAnyValue : -1;
    else
      n.additional = compile(*it, path + ".additionalProperties", depth + 1);
  }
  return add(std::move(n), path);
}

uint32_t SchemaCompiler::count(const json& s, const char* key, const std::string& path) const {
  const json& v = s[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    fail_at(path + "." + key, "expected a non-negative integer");
  return uint32_t(std::min<int64_t>(v.get<int64_t>(), int64_t(kUnbounded)));
}

int32_t SchemaCompiler::array(const json& s, const std::string& path, int depth) {
  GrammarNode n{.kind = NodeKind::kArray, .items = JsonGrammar::kAnyValue};
  if (const auto it = s.find("items"); it != s.end()) {
    if (it->is_array())
      unsupported(path + ".items", "tuple items (an array of schemas) are not supported");
    if (it->is_boolean() && !it->get<bool>())
      n.max_items = 0;
    else
      n.items = compile(*it, path + ".items", depth + 1);
  }
  if (s.contains("minItems")) n.min_items = count(s, "minItems", path);
  if (s.contains("maxItems")) n.max_items = std::min(n.max_items, count(s, "maxItems", path));
  if (n.min_items > n.max_items)
    fail_at(path + ".minItems",
            fmt::format("minItems {} is larger than maxItems {}", n.min_items, n.max_items));
  if (const auto it = s.find("uniqueItems"); it != s.end()) {
    if (!it->is_boolean()) fail_at(path + ".uniqueItems", "expected true or false");
    if (it->get<bool>()) unsupported(path + ".uniqueItems", "uniqueItems: true is not supported");
  }
  return add(std::move(n), path);
}

int32_t SchemaCompiler::string(const json& s, const std::string& path) {
  GrammarNode n{.kind = NodeKind::kString};
  if (s.contains("minLength")) n.min_length = count(s, "minLength", path);
  if (s.contains("maxLength")) n.max_length = count(s, "maxLength", path);
  if (n.min_length > n.max_length)
    fail_at(path + ".minLength",
            fmt::format("minLength {} is larger than maxLength {}", n.min_length, n.max_length));
  if (n.min_length == 0 && n.max_length == kUnbounded) return JsonGrammar::kAnyString;
  return add(std::move(n), path);
}

std::shared_ptr<const JsonGrammar> JsonGrammar::from_schema(const json& schema,
                                                            const std::string& path,
                                                            JsonGrammarLimits limits) {
  std::shared_ptr<JsonGrammar> g(new JsonGrammar());
  g->limits_ = limits;
  SchemaCompiler c(*g, schema);
  g->root_ = c.compile(schema, path, 0);
  g->key_ = "schema:" + schema.dump();
  g->finish(path);
  return g;
}

}  // namespace ug
