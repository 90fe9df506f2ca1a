// Built-in nodes, literal tries and the finishing pass (first bytes, productivity) of JsonGrammar.
// The schema compiler is schema_compiler.cc.
#include "runtime/json_constraint/json_grammar.h"

#include <algorithm>

namespace ug {

JsonGrammar::JsonGrammar() {
  GrammarNode any;
  add_node(any);  // kAnyValue
  GrammarNode object{.kind = NodeKind::kObject, .additional = kAnyValue};
  add_node(object);  // kAnyObject
  GrammarNode array{.kind = NodeKind::kArray, .items = kAnyValue};
  add_node(array);                        // kAnyArray
  add_node({.kind = NodeKind::kString});  // kAnyString
  add_node({.kind = NodeKind::kNumber});  // kAnyNumber
  GrammarNode keywords{.kind = NodeKind::kLiteral};
  keywords.literal = add_literals({"true", "false", "null"});
  add_node(keywords);                      // kKeywordLiteral
  add_node({.kind = NodeKind::kInteger});  // kAnyInteger
}

int32_t JsonGrammar::add_node(GrammarNode n) {
  nodes_.push_back(std::move(n));
  return int32_t(nodes_.size() - 1);
}

int32_t JsonGrammar::add_literals(const std::vector<std::string>& texts) {
  const int32_t root = int32_t(literals_.size());
  literals_.emplace_back();
  for (const std::string& t : texts) {
    int32_t at = root;
    for (char c : t) {
      const uint8_t b = uint8_t(c);
      auto& next = literals_[size_t(at)].next;
      auto it = std::find_if(next.begin(), next.end(), [&](const auto& e) { return e.first == b; });
      if (it != next.end()) {
        at = it->second;
        continue;
      }
      const int32_t child = int32_t(literals_.size());
      literals_[size_t(at)].next.push_back({b, child});
      literals_.emplace_back();
      at = child;
    }
    literals_[size_t(at)].terminal = true;
  }
  return root;
}

namespace {

std::bitset<256> bytes_of(std::string_view chars) {
  std::bitset<256> b;
  for (char c : chars) b.set(uint8_t(c));
  return b;
}

}  // namespace

std::shared_ptr<const JsonGrammar> JsonGrammar::any_object(JsonGrammarLimits limits) {
  std::shared_ptr<JsonGrammar> g(new JsonGrammar());
  g->limits_ = limits;
  g->root_ = kAnyObject;
  g->key_ = "json_object";
  g->finish("json_object");
  return g;
}

// first_bytes of every node (alternations through their alternatives; a cycle of alternations with
// no container in between would make the matcher recurse forever and is rejected), then
// productivity: a node is productive when it has a finite instance. Unproductive alternatives,
// optional properties and array items are removed so that every prefix the matcher accepts can
// still be completed.
void JsonGrammar::finish(const std::string& path) {
  const auto number = bytes_of("-0123456789");
  std::vector<uint8_t> state(nodes_.size(), 0);  // 0 new, 1 in progress, 2 done
  auto first = [&](auto& self, int32_t i) -> void {
    GrammarNode& n = nodes_[size_t(i)];
    if (state[size_t(i)] == 2) return;
    if (state[size_t(i)] == 1)
      throw SchemaError(path, "a $ref / anyOf cycle with no object or array in between");
    state[size_t(i)] = 1;
    switch (n.kind) {
      case NodeKind::kAny:
        n.first_bytes = bytes_of("{[\"tfn") | number;
        break;
      case NodeKind::kObject:
        n.first_bytes = bytes_of("{");
        break;
      case NodeKind::kArray:
        n.first_bytes = bytes_of("[");
        break;
      case NodeKind::kString:
        n.first_bytes = bytes_of("\"");
        break;
      case NodeKind::kNumber:
      case NodeKind::kInteger:
        n.first_bytes = number;
        break;
      case NodeKind::kLiteral:
        n.first_bytes.reset();
        for (const auto& [b, child] : literals_[size_t(n.literal)].next) n.first_bytes.set(b);
        break;
      case NodeKind::kAnyOf:
        n.first_bytes.reset();
        for (int32_t alt : n.alternatives) {
          self(self, alt);
          nodes_[size_t(i)].first_bytes |= nodes_[size_t(alt)].first_bytes;
        }
        break;
    }
    state[size_t(i)] = 2;
  };
  for (size_t i = 0; i < nodes_.size(); ++i) first(first, int32_t(i));

  // Productivity: least fixpoint.
  std::vector<bool> productive(nodes_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (productive[i]) continue;
      const GrammarNode& n = nodes_[i];
      bool p = true;
      if (n.kind == NodeKind::kObject) {
        for (size_t k = 0; k < n.properties.size(); ++k)
          if (n.properties[k].required && !productive[size_t(n.properties[k].value)]) p = false;
      } else if (n.kind == NodeKind::kArray) {
        p = n.min_items == 0 || productive[size_t(n.items)];
      } else if (n.kind == NodeKind::kAnyOf) {
        p = std::any_of(n.alternatives.begin(), n.alternatives.end(),
                        [&](int32_t a) { return productive[size_t(a)]; });
      } else if (n.kind == NodeKind::kLiteral) {
        p = !literals_[size_t(n.literal)].next.empty();
      }
      if (p) productive[i] = changed = true;
    }
  }
  if (!productive[size_t(root_)])
    throw SchemaError(path, "the schema has no finite instance (every value would nest forever)");
  for (GrammarNode& n : nodes_) {
    if (n.kind == NodeKind::kAnyOf) {
      std::erase_if(n.alternatives, [&](int32_t a) { return !productive[size_t(a)]; });
      n.first_bytes.reset();
      for (int32_t a : n.alternatives) n.first_bytes |= nodes_[size_t(a)].first_bytes;
    } else if (n.kind == NodeKind::kObject) {
      for (size_t k = 0; k < n.properties.size(); ++k)  // only optional ones: n is productive
        if (!productive[size_t(n.properties[k].value)]) n.forbidden |= uint64_t(1) << k;
      if (n.additional >= 0 && !productive[size_t(n.additional)]) n.additional = -1;
    } else if (n.kind == NodeKind::kArray && !productive[size_t(n.items)]) {
      n.max_items = 0;
    }
  }
}

}  // namespace ug
