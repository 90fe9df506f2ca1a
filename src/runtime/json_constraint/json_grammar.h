// The compiled form of a response_format for constrained decoding: a graph of value nodes (object,
// array, string, number, literal set, alternation) that json_matcher.h walks byte by byte.
// JsonGrammar::any_object() is response_format json_object; JsonGrammar::from_schema compiles the
// JSON Schema subset of docs/server.md and rejects everything else with a SchemaError naming the
// keyword's JSON path, so no schema keyword is ever silently ignored.
#pragma once

#include <bitset>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace ug {

// A schema the compiler refuses; `path` is the JSON path of the offending keyword, prefixed with
// the path given to from_schema (e.g. "response_format.json_schema.schema.properties.x.pattern").
// `unsupported`: valid JSON Schema that this engine does not enforce (vs a malformed schema).
struct SchemaError : Error {
  SchemaError(std::string path, const std::string& message, bool unsupported = false)
      : Error(path + ": " + message), path(std::move(path)), unsupported(unsupported) {}
  std::string path;
  bool unsupported = false;
};

enum class NodeKind : uint8_t {
  kAny,      // any JSON value
  kObject,   // declared properties (any order, each at most once) + optional other keys
  kArray,    // items of one node, min/max count
  kString,   // min/max length in code points
  kNumber,   // RFC 8259 number
  kInteger,  // -?(0|[1-9][0-9]*)
  kLiteral,  // one of a set of exact JSON texts (enum, const, true/false/null)
  kAnyOf,    // one of several nodes (anyOf, oneOf, type lists)
};

constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
constexpr size_t kMaxProperties = 64;  // declared properties per object (a 64-bit "seen" mask)

struct ObjectProperty {
  std::string key;  // the name as written between the quotes: JSON-escaped, canonical
  int32_t value = -1;
  bool required = false;
};

struct GrammarNode {
  NodeKind kind = NodeKind::kAny;
  std::vector<ObjectProperty> properties;  // kObject
  uint64_t required = 0;                   // kObject: bit i = properties[i] is required
  uint64_t forbidden = 0;   // kObject: optional properties whose schema no value can satisfy
  int32_t additional = -1;  // kObject: node of other keys' values; -1 = none allowed
  int32_t items = 0;        // kArray
  uint32_t min_items = 0, max_items = kUnbounded;    // kArray
  uint32_t min_length = 0, max_length = kUnbounded;  // kString
  int32_t literal = -1;                              // kLiteral: root of its LiteralTrie
  std::vector<int32_t> alternatives;                 // kAnyOf
  std::bitset<256> first_bytes;  // the bytes a value of this node can start with
};

// The exact texts of a kLiteral node as a byte trie (node 0 of each literal set is its root).
struct LiteralTrieNode {
  bool terminal = false;
  std::vector<std::pair<uint8_t, int32_t>> next;
};

struct JsonGrammarLimits {
  int32_t max_whitespace_run = 20;  // bytes of one whitespace run (at most one '\n' in it)
  int32_t max_depth = 128;          // frames on the matcher stack (nesting of containers + strings)
  int32_t max_schema_depth = 64;    // nesting of subschemas in the schema document
  int32_t max_nodes = 10000;        // compiled nodes
};

class JsonGrammar {
 public:
  // Built-in nodes present in every grammar.
  static constexpr int32_t kAnyValue = 0, kAnyObject = 1, kAnyArray = 2, kAnyString = 3,
                           kAnyNumber = 4, kKeywordLiteral = 5,  // true / false / null
      kAnyInteger = 6;

  // response_format {"type": "json_object"}: any JSON object.
  static std::shared_ptr<const JsonGrammar> any_object(JsonGrammarLimits limits = {});
  // response_format {"type": "json_schema"}: `schema` is json_schema.schema, `path` its JSON path
  // for errors. Throws SchemaError.
  static std::shared_ptr<const JsonGrammar> from_schema(const nlohmann::json& schema,
                                                        const std::string& path,
                                                        JsonGrammarLimits limits = {});

  int32_t root() const { return root_; }
  const GrammarNode& node(int32_t i) const { return nodes_[size_t(i)]; }
  const LiteralTrieNode& literal(int32_t i) const { return literals_[size_t(i)]; }
  const JsonGrammarLimits& limits() const { return limits_; }
  // Identifies the grammar (equal keys = equal grammars): lets mask caches outlive one request.
  const std::string& key() const { return key_; }

 private:
  friend class SchemaCompiler;
  JsonGrammar();
  int32_t add_node(GrammarNode n);
  int32_t add_literals(const std::vector<std::string>& texts);  // returns the trie root
  // first_bytes and productivity of every node; throws SchemaError(path) on alternation cycles.
  void finish(const std::string& path);

  std::vector<GrammarNode> nodes_;
  std::vector<LiteralTrieNode> literals_;
  int32_t root_ = kAnyObject;
  JsonGrammarLimits limits_;
  std::string key_;
};

}  // namespace ug
