#include "server/request_common.h"

#include <fmt/format.h>

#include <limits>

#include "server/api_error.h"

namespace ug::server {

using nlohmann::json;

namespace {

std::vector<std::string> read_stop(FieldReader& r, const RequestLimits& limits) {
  std::vector<std::string> stops;
  const json* v = r.raw("stop");
  if (!v) return stops;
  if (v->is_string()) {
    stops.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string())
        bad_request(fmt::format("stop[{}]", i), "expected a string, got " + json_kind((*v)[i]),
                    "invalid_type");
      stops.push_back((*v)[i].get<std::string>());
    }
  } else {
    bad_request("stop", "expected a string or an array of strings, got " + json_kind(*v),
                "invalid_type");
  }
  if (int64_t(stops.size()) > limits.max_stop)
    bad_request("stop",
                fmt::format("at most {} stop sequences, got {}", limits.max_stop, stops.size()),
                "invalid_value");
  for (const auto& s : stops)
    if (s.empty()) bad_request("stop", "stop sequences must not be empty", "invalid_value");
  return stops;
}

}  // namespace

GenerationOptions read_generation_options(FieldReader& r, const RequestLimits& limits) {
  constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();
  GenerationOptions g;
  g.max_tokens = r.integer("max_tokens", 0, kMaxInt);
  g.temperature = r.number("temperature", 0, 2);
  g.top_p = r.number("top_p", 0, 1);
  g.presence_penalty = r.number("presence_penalty", -2, 2);
  g.frequency_penalty = r.number("frequency_penalty", -2, 2);
  // Extensions (vLLM / llama.cpp spelling): top_k (-1 or 0 = off), min_p, repetition_penalty (HF
  // semantics).
  g.top_k = r.integer("top_k", -1, kMaxInt);
  if (g.top_k && *g.top_k < 0) g.top_k = 0;
  g.min_p = r.number("min_p", 0, 1);
  g.repetition_penalty = r.number("repetition_penalty", 1e-3, 100);
  if (auto seed = r.integer("seed", std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max()))
    g.seed = uint64_t(*seed);
  g.stop = read_stop(r, limits);
  g.n = r.integer("n", 1, limits.max_n).value_or(1);
  g.stream = r.boolean("stream").value_or(false);
  if (const json* so = r.object("stream_options")) {
    if (!g.stream)
      bad_request("stream_options", "only allowed when stream is true", "invalid_value");
    FieldReader o(*so, "stream_options");
    g.include_usage = o.boolean("include_usage").value_or(false);
    o.ignore({"include_obfuscation"});
    o.reject_unknown();
  }
  return g;
}

std::shared_ptr<const JsonGrammar> read_response_format(FieldReader& r) {
  const json* rf = r.object("response_format");
  if (!rf) return nullptr;
  FieldReader f(*rf, "response_format");
  const std::string type = f.required_string("type");
  std::shared_ptr<const JsonGrammar> grammar;
  if (type == "json_object") {
    grammar = JsonGrammar::any_object();
  } else if (type == "json_schema") {
    const json* js = f.object("json_schema");
    if (!js) bad_request(f.at("json_schema"), "required field is missing", "missing_field");
    FieldReader s(*js, f.at("json_schema"));
    if (auto name = s.string("name"))
      if (name->empty() || name->size() > 64 ||
          name->find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
              std::string::npos)
        bad_request(s.at("name"), "must be 1-64 characters of a-z, A-Z, 0-9, _ or -",
                    "invalid_value");
    (void)s.string("description");
    (void)s.boolean("strict");  // the schema is always enforced
    const json* schema = s.raw("schema");
    if (!schema) bad_request(s.at("schema"), "required field is missing", "missing_field");
    s.reject_unknown();
    try {
      grammar = JsonGrammar::from_schema(*schema, s.at("schema"));
    } catch (const SchemaError& e) {
      throw ApiError(400, e.what(), e.path,
                     e.unsupported ? "unsupported_parameter" : "invalid_value");
    }
  } else if (type != "text") {
    bad_request(f.at("type"), "expected text, json_object or json_schema", "invalid_value");
  }
  f.reject_unknown();
  return grammar;
}

void read_ignored_and_unsupported(FieldReader& r) {
  r.ignore({"user", "metadata", "store", "service_tier", "parallel_tool_calls", "prompt_cache_key",
            "safety_identifier"});
  if (const json* lb = r.object("logit_bias"); lb && !lb->empty())
    throw ApiError(400, "logit_bias: not supported by this server", "logit_bias",
                   "unsupported_parameter");
  if (const json* m = r.array("modalities"))
    for (const auto& x : *m)
      if (x != "text")
        throw ApiError(400, "modalities: only \"text\" output is supported", "modalities",
                       "unsupported_parameter");
  for (const char* deprecated : {"functions", "function_call"})
    if (r.has(deprecated))
      throw ApiError(400, fmt::format("{}: deprecated; use tools / tool_choice", deprecated),
                     deprecated, "unsupported_parameter");
}

}  // namespace ug::server
