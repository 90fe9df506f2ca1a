// POST /v1/completions body -> CompletionRequest (legacy text completions). Schema: docs/server.md.
#include <fmt/format.h>

#include "server/api_error.h"
#include "server/request.h"
#include "server/request_common.h"

namespace ug::server {

using nlohmann::json;

namespace {

std::vector<int32_t> read_ids(const json& a, const std::string& where) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number_integer() || a[i].get<int64_t>() < 0 || a[i].get<int64_t>() > INT32_MAX)
      bad_request(fmt::format("{}[{}]", where, i), "expected a token id (a non-negative integer)",
                  "invalid_type");
    ids.push_back(int32_t(a[i].get<int64_t>()));
  }
  if (ids.empty()) bad_request(where, "empty token list", "invalid_value");
  return ids;
}

// prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...]
std::vector<CompletionPrompt> read_prompts(FieldReader& r) {
  const json* p = r.raw("prompt");
  if (!p) bad_request("prompt", "required field is missing", "missing_field");
  std::vector<CompletionPrompt> out;
  if (p->is_string()) {
    out.push_back({.text = p->get<std::string>()});
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    out.push_back({.ids = read_ids(*p, "prompt")});
  } else if (p->is_array() && !p->empty()) {
    for (size_t i = 0; i < p->size(); ++i) {
      const json& e = (*p)[i];
      std::string where = fmt::format("prompt[{}]", i);
      if (e.is_string())
        out.push_back({.text = e.get<std::string>()});
      else if (e.is_array())
        out.push_back({.ids = read_ids(e, where)});
      else
        bad_request(where, "expected a string or an array of token ids, got " + json_kind(e),
                    "invalid_type");
    }
  } else {
    bad_request("prompt", "expected a string, an array of strings or an array of token ids",
                "invalid_type");
  }
  // A media placeholder string in a text prompt is that literal token (this endpoint takes no media): a raw
  // prompt may carry model output back, as a re-sent assistant message may (docs/server.md).
  return out;
}

}  // namespace

CompletionRequest parse_completion_request(const json& body, const RequestLimits& limits) {
  FieldReader r(body, "");
  CompletionRequest out;
  out.model = r.required_string("model");
  out.prompts = read_prompts(r);
  out.gen = read_generation_options(r, limits);
  if (!out.gen.max_tokens) out.gen.max_tokens = 16;  // the OpenAI default of this endpoint
  out.echo = r.boolean("echo").value_or(false);
  if (auto lp = r.integer("logprobs", 0, 5)) out.gen.top_logprobs = int32_t(*lp);
  if (auto best_of = r.integer("best_of", 1, limits.max_n); best_of && *best_of != out.gen.n)
    throw ApiError(400, "best_of: only best_of == n is supported", "best_of",
                   "unsupported_parameter");
  if (auto suffix = r.string("suffix"); suffix && !suffix->empty())
    throw ApiError(400, "suffix: not supported by this model", "suffix", "unsupported_parameter");
  if (out.gen.max_tokens == 0) bad_request("max_tokens", "must be at least 1", "invalid_value");
  if (int64_t(out.prompts.size()) * out.gen.n > limits.max_n * 4)
    bad_request("prompt",
                fmt::format("too many prompts x n (at most {} choices)", limits.max_n * 4),
                "invalid_value");
  read_ignored_and_unsupported(r);
  out.gen.json = read_response_format(r);  // extension (vLLM): the completion is the JSON value
  r.reject_unknown();
  return out;
}

}  // namespace ug::server
