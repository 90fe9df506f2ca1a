// The JSON matcher and the schema compiler: RFC 8259 syntax (numbers, escapes, surrogates, UTF-8,
// whitespace bounds), every supported schema keyword, the located errors for unsupported ones, and
// liveness (no viable prefix is a dead end) with every completed random walk validated.
#include <gtest/gtest.h>

#include "json_test_util.h"

namespace ug {
namespace {

using nlohmann::json;
using test::match;
using test::Matched;
using test::schema;

void expect_complete(const JsonGrammar& g, const std::string& text) {
  EXPECT_TRUE(match(g, text).complete) << text;
}
void expect_prefix_only(const JsonGrammar& g, const std::string& text) {
  Matched r = match(g, text);
  EXPECT_TRUE(r.viable && !r.complete) << text;
}
void expect_dead(const JsonGrammar& g, const std::string& text) {
  EXPECT_FALSE(match(g, text).viable) << text;
}

TEST(JsonMatcher, AnyObjectSyntax) {
  auto g = JsonGrammar::any_object();
  for (const char* ok : {"{}", "{\"a\":1}", " {\"a\" : [1, 2.5e-3, -0, true, false, null, {}, []]}",
                         "{\"\":\"\"}", "{\"k\":{\"n\":{\"m\":[[[]]]}}}", "{\"a\":1}\n",
                         "{\"a\":-12.5E+07}", "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}"})
    expect_complete(*g, ok);
  for (const char* prefix : {"", " ", "{", "{\"a", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1.",
                             "{\"a\":1e", "{\"a\":-", "{\"a\":tr", "{\"a\":[1,"})
    expect_prefix_only(*g, prefix);
  for (const char* bad : {"[]", "\"s\"", "1", "{a:1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
                          "{\"a\":+1}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1}}", "{} x",
                          "{\"a\":tru}", "{\"a\":1 2}", "{\"a\":[1,]}", "{,}", "{\"a\":--1}"})
    expect_dead(*g, bad);
}

TEST(JsonMatcher, StringEscapesSurrogatesAndUtf8) {
  auto g = schema(R"({"type":"string"})");
  for (const char* ok : {R"("")", R"("\"\\\/\b\f\n\r\t")", R"("\u00e9\u0000")", R"("\ud83d\ude00")",
                         R"("\uD83D\uDE00")", "\"\xC3\xA9\xF0\x9F\x98\x80\"",
                         "\"\xE0\xA0\x80\xED\x9F\xBF\xF4\x8F\xBF\xBF\x7F\""})
    expect_complete(*g, ok);
  for (const char* bad :
       {R"("\x")", R"("\u12G4")", R"("\udc00")", R"("\ud800x")", R"("\ud800\u0041")", "\"\x01\"",
        "\"\n\"", "\"\xC0\x80\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xC3\"",
        "\"\xFF\"", "\"\xE0\x80\x80\""})
    expect_dead(*g, bad);
  expect_prefix_only(*g, R"("\ud800)");
  expect_prefix_only(*g, R"("\ud800\u)");
  expect_prefix_only(*g, "\"\xF0\x9F\x98");
}

TEST(JsonMatcher, NumbersAndIntegers) {
  auto num = schema(R"({"type":"number"})");
  for (const char* ok : {"0", "-0", "1.5", "1e5", "1E+5", "1.5e-10", "123", "-0.0e0"})
    expect_complete(*num, ok);
  for (const char* bad : {"01", "1.e5", ".5", "+1", "--1", "1e+-1", "0x1", "-"}) {
    Matched r = match(*num, bad);
    EXPECT_FALSE(r.complete) << bad;
  }
  expect_prefix_only(*num, "1e");
  expect_complete(*num, std::string(20, '9') + "." + std::string(20, '9') + "e-99");
  expect_dead(*num, std::string(21, '9'));
  expect_dead(*num, "1." + std::string(21, '9'));
  expect_dead(*num, "1e100");
  auto integer = schema(R"({"type":"integer"})");
  expect_complete(*integer, "-42");
  expect_dead(*integer, "1.5");
  expect_dead(*integer, "1e3");
}

TEST(JsonMatcher, WhitespaceIsBounded) {
  auto g = JsonGrammar::any_object();
  expect_complete(*g, "{" + std::string(20, ' ') + "}");
  expect_dead(*g, "{" + std::string(21, ' ') + "}");
  expect_complete(*g, "{\n" + std::string(19, ' ') + "\"a\":1}");
  expect_dead(*g, "{\n\n}");
  expect_complete(*g, "{\n}\n");
  expect_dead(*g, std::string(21, ' '));
}

TEST(JsonSchema, PropertiesRequiredAndAdditional) {
  auto g = schema(R"({"type":"object","properties":{"a":{"type":"string"},
                      "b":{"type":"integer"}},"required":["a"]})");
  expect_complete(*g, R"({"a":"x"})");
  expect_complete(*g, R"({"b":1,"a":"y"})");  // any order
  expect_dead(*g, R"({"b":1})");
  expect_dead(*g, R"({"a":"x","a":"y"})");  // each key once
  expect_dead(*g, R"({"c":1})");            // absent additionalProperties with properties: none
  expect_dead(*g, R"({"a":1})");
  expect_prefix_only(*g, R"({"a)");
  expect_dead(*g, R"({"ab)");
  auto extra = schema(R"({"type":"object","properties":{"a":{"type":"integer"}},
                          "additionalProperties":{"type":"boolean"}})");
  expect_complete(*extra, R"({"zz":true,"a":1,"ab":false})");
  expect_dead(*extra, R"({"zz":1})");
  expect_dead(*extra, R"({"\u0061":1})");  // \u could spell a declared name: not an extra key
  auto open = schema(R"({"type":"object","properties":{"a":{"type":"integer"}},
                         "additionalProperties":true})");
  expect_complete(*open, R"({"q":[1,{"r":null}],"a":2})");
  auto none = schema(R"({"type":"object","additionalProperties":false})");
  expect_complete(*none, "{}");
  expect_dead(*none, R"({")");
  auto escaped = schema(R"({"type":"object","properties":{"a\"b\n":{"type":"null"}},
                            "required":["a\"b\n"]})");
  expect_complete(*escaped, R"({"a\"b\n":null})");
}

TEST(JsonSchema, ArraysEnumsConstAndLiterals) {
  auto arr = schema(R"({"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":2})");
  expect_dead(*arr, "[]");
  expect_complete(*arr, "[true]");
  expect_complete(*arr, "[ true , false ]");
  expect_dead(*arr, "[true,false,");
  auto e = schema(R"({"enum":["red","green",1,null,{"k":[1,2]}]})");
  for (const char* ok : {"\"red\"", "\"green\"", "1", "null", "{\"k\":[1,2]}"})
    expect_complete(*e, ok);
  expect_prefix_only(*e, "\"re");
  for (const char* bad : {"\"blue\"", "12", "\"redd\"", "{\"k\": [1,2]}"}) expect_dead(*e, bad);
  auto typed = schema(R"({"type":"string","enum":["a",1]})");
  expect_complete(*typed, "\"a\"");
  expect_dead(*typed, "1");
  auto c = schema(R"({"const":"x"})");
  expect_complete(*c, "\"x\"");
  expect_dead(*c, "\"y\"");
  auto b = schema(R"({"type":"boolean"})");
  expect_complete(*b, "true");
  expect_complete(*b, "false");
  expect_dead(*b, "null");
  auto n = schema(R"({"type":"null"})");
  expect_complete(*n, "null");
  auto no_items = schema(R"({"type":"array","items":false})");
  expect_complete(*no_items, "[]");
  expect_dead(*no_items, "[1");
}

TEST(JsonSchema, StringLengthsCountCodePoints) {
  auto g = schema(R"({"type":"string","minLength":2,"maxLength":3})");
  expect_dead(*g, "\"a\"");
  expect_complete(*g, "\"\xC3\xA9\xF0\x9F\x98\x80\"");  // 2 code points
  expect_complete(*g, R"("\u00e9\ud83d\ude00x")");      // 3
  expect_dead(*g, R"("abcd)");
  expect_prefix_only(*g, R"("abc)");
}

TEST(JsonSchema, AlternativesTypeListsAndNullable) {
  auto g = schema(R"({"anyOf":[{"type":"string","maxLength":2},{"type":"string","minLength":4}]})");
  expect_complete(*g, "\"ab\"");
  expect_prefix_only(*g, "\"abc");
  expect_dead(*g, "\"abc\"");
  expect_complete(*g, "\"abcd\"");
  auto one = schema(R"({"oneOf":[
      {"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
      {"type":"object","properties":{"b":{"type":"string"}},"required":["b"]}]})");
  expect_complete(*one, R"({"a":1})");
  expect_complete(*one, R"({"b":"x"})");
  expect_dead(*one, R"({"a":"x"})");
  auto list = schema(R"({"type":["string","null"]})");
  expect_complete(*list, "null");
  expect_complete(*list, "\"s\"");
  expect_dead(*list, "1");
  auto nullable = schema(R"({"type":"integer","nullable":true})");
  expect_complete(*nullable, "null");
  expect_complete(*nullable, "7");
}

TEST(JsonSchema, RefsDefsAndRecursion) {
  auto g = schema(R"({"$defs":{"P":{"type":"object","properties":{"x":{"type":"number"}},
                      "required":["x"]}},"type":"object","properties":{"p":{"$ref":"#/$defs/P"},
                      "q":{"allOf":[{"$ref":"#/definitions/Q"}]}},"required":["p"],
                      "definitions":{"Q":{"type":"boolean"}}})");
  expect_complete(*g, R"({"p":{"x":1.5},"q":true})");
  expect_dead(*g, R"({"p":{"y":1}})");
  auto tree = schema(R"({"type":"object","properties":{"v":{"type":"integer"},
                         "kids":{"type":"array","items":{"$ref":"#"}}},"required":["v"]})");
  expect_complete(*tree, R"({"v":1,"kids":[{"v":2,"kids":[]},{"v":3}]})");
  expect_dead(*tree, R"({"v":1,"kids":[{"kids":[]}]})");
}

void expect_schema_error(const std::string& text, const std::string& path) {
  try {
    JsonGrammar::from_schema(json::parse(text), "response_format.json_schema.schema");
    ADD_FAILURE() << "no error for " << text;
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.path, path) << e.what();
  }
}

TEST(JsonSchema, UnsupportedKeywordsNameTheirPath) {
  const std::string p = "response_format.json_schema.schema";
  expect_schema_error(R"({"type":"object","properties":{"x":{"type":"string","pattern":"a+"}}})",
                      p + ".properties.x.pattern");
  expect_schema_error(R"({"type":"string","format":"date-time"})", p + ".format");
  expect_schema_error(R"({"type":"integer","minimum":0})", p + ".minimum");
  expect_schema_error(R"({"type":"array","prefixItems":[]})", p + ".prefixItems");
  expect_schema_error(R"({"not":{}})", p + ".not");
  expect_schema_error(R"({"type":"array","items":{"type":"string"},"uniqueItems":true})",
                      p + ".uniqueItems");
  expect_schema_error(R"({"$ref":"other.json#/a"})", p + ".$ref");
  expect_schema_error(R"({"$ref":"#/$defs/missing"})", p + ".$ref");
  expect_schema_error(R"({"allOf":[{},{}]})", p + ".allOf");
  expect_schema_error(R"({"type":"foo"})", p + ".type");
  expect_schema_error(R"({"type":"string","properties":{}})", p + ".properties");
  expect_schema_error(R"({"type":"string","minLength":3,"maxLength":2})", p + ".minLength");
  expect_schema_error(R"({"anyOf":[{"type":"string"}],"type":"string"})", p + ".type");
  expect_schema_error(R"({"enum":[]})", p + ".enum");
  expect_schema_error(R"({"type":"integer","enum":["a"]})", p + ".enum");
  expect_schema_error("false", p);
  expect_schema_error(R"({"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]})", p);
  expect_schema_error(R"({"$defs":{"A":{"$ref":"#/$defs/B"},"B":{"$ref":"#/$defs/A"}},
                          "$ref":"#/$defs/A"})",
                      p);
}

// Random walks over many schemas: no dead ends, and every completed text parses and validates.
TEST(JsonSchema, RandomWalksAreLiveAndValid) {
  const std::vector<std::string> schemas = {
      R"({"type":"object"})",
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":5},
          "age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},
          "minItems":1,"maxItems":3},"ok":{"type":["boolean","null"]}},
          "required":["name","tags"]})",
      R"({"anyOf":[{"type":"object","properties":{"k":{"const":1}},"required":["k"]},
          {"type":"array","items":{"type":"number"}},{"type":"string","minLength":3}]})",
      R"({"type":"object","properties":{"v":{"type":"integer"},
          "kids":{"type":"array","items":{"$ref":"#"},"maxItems":2}},"required":["v"]})",
      R"({"type":"object","properties":{"a":{"type":"string"},"ab":{"type":"string"},
          "abc":{"type":"null"}},"additionalProperties":{"type":"integer"}})",
  };
  std::mt19937 rng(7);
  for (const std::string& text : schemas) {
    const json doc = json::parse(text);
    auto g = JsonGrammar::from_schema(doc, "schema");
    int completed = 0;
    for (int walk = 0; walk < 60; ++walk) {
      auto out = test::random_walk(*g, rng, int(rng() % 120));
      if (!out) continue;
      ++completed;
      EXPECT_TRUE(test::parses_and_validates(*out, doc)) << text;
    }
    EXPECT_GT(completed, 40) << text;
  }
  auto any = JsonGrammar::any_object();
  const json object = {{"type", "object"}};
  for (int walk = 0; walk < 60; ++walk) {
    auto out = test::random_walk(*any, rng, int(rng() % 200));
    if (!out) continue;
    EXPECT_TRUE(test::parses_and_validates(*out, object));
  }
}

}  // namespace
}  // namespace ug
