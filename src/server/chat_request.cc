// POST /v1/chat/completions body -> ChatRequest. Schema accepted: docs/server.md.
#include <fmt/format.h>

#include "server/api_error.h"
#include "server/request.h"
#include "server/request_common.h"

namespace ug::server {

using nlohmann::json;

namespace {

// Media placeholder strings in user, system or tool text would read as media slots: media come as content
// parts. An assistant message is a reply sent back as history: there the text is the token the model
// generated and is kept as that literal token (only media parts make media slots; render_chat_with_media).
void reject_placeholders(const std::string& text, const std::string& role, const std::string& where) {
  if (role == "assistant") return;
  for (const char* ph : {"<|image|>", "<|audio|>", "<|video|>"})
    if (text.find(ph) != std::string::npos)
      bad_request(
          where,
          fmt::format("text must not contain the media placeholder {}; send media as content parts",
                      ph),
          "invalid_value");
}

std::optional<int64_t> image_tokens_for(FieldReader& r) {
  std::optional<int64_t> tokens;
  if (auto detail = r.string("detail")) {
    if (*detail == "low")
      tokens = 70;
    else if (*detail == "high")
      tokens = 1120;
    else if (*detail != "auto")
      bad_request(r.at("detail"), "expected \"auto\", \"low\" or \"high\"", "invalid_value");
  }
  // Extension: the exact soft-token budget (Gemma 4 accepts 70, 140, 280, 560, 1120).
  if (auto n = r.integer("image_tokens", 70, 1120)) {
    if (*n != 70 && *n != 140 && *n != 280 && *n != 560 && *n != 1120)
      bad_request(r.at("image_tokens"), "must be one of 70, 140, 280, 560, 1120", "invalid_value");
    tokens = n;
  }
  return tokens;
}

// {"url": ...} or a bare URL string (several clients send that form).
MediaSource url_media(const json& v, MediaKind kind, const std::string& where,
                      const RequestLimits& limits, bool image) {
  if (v.is_string()) return media_from_url(kind, v.get<std::string>(), limits.media, where);
  FieldReader u(v, where);
  std::string url = u.required_string("url");
  std::optional<int64_t> tokens = image ? image_tokens_for(u) : std::nullopt;
  u.reject_unknown();
  MediaSource s = media_from_url(kind, url, limits.media, u.at("url"));
  s.image_tokens = tokens;
  return s;
}

MediaSource data_media(const json& v, MediaKind kind, const std::string& where,
                       const RequestLimits& limits, std::initializer_list<const char*> formats) {
  FieldReader d(v, where);
  std::string data = d.required_string("data");
  std::string format = d.required_string("format");
  bool known = false;
  std::string list;
  for (const char* f : formats) {
    known |= format == f;
    list += list.empty() ? f : std::string(", ") + f;
  }
  if (!known)
    bad_request(d.at("format"),
                fmt::format("unsupported format '{}' (expected one of {})", format, list),
                "invalid_value");
  d.reject_unknown();
  return media_from_base64(kind, data, limits.media, d.at("data"));
}

// One content part; media parts are decoded into `media` and reduced to {"type": kind}.
json read_part(const json& part, const std::string& where, const std::string& role, ChatRequest& out,
               const RequestLimits& limits) {
  FieldReader p(part, where);
  const std::string type = p.required_string("type");
  json reduced;
  std::optional<MediaSource> media;
  if (type == "text") {
    std::string text = p.required_string("text");
    reject_placeholders(text, role, p.at("text"));
    reduced = {{"type", "text"}, {"text", text}};
  } else if (type == "image_url" || type == "input_image") {
    const json* v = p.raw("image_url");
    if (!v) bad_request(p.at("image_url"), "required field is missing", "missing_field");
    if (type == "input_image") p.ignore({"detail"});
    media = url_media(*v, MediaKind::Image, p.at("image_url"), limits, true);
    reduced = {{"type", "image"}};
  } else if (type == "input_audio") {
    const json* v = p.object("input_audio");
    if (!v) bad_request(p.at("input_audio"), "required field is missing", "missing_field");
    media = data_media(*v, MediaKind::Audio, p.at("input_audio"), limits,
                       {"wav", "mp3", "flac", "ogg", "opus", "m4a", "aac", "webm", "pcm16"});
    reduced = {{"type", "audio"}};
  } else if (type == "audio_url") {
    const json* v = p.raw("audio_url");
    if (!v) bad_request(p.at("audio_url"), "required field is missing", "missing_field");
    media = url_media(*v, MediaKind::Audio, p.at("audio_url"), limits, false);
    reduced = {{"type", "audio"}};
  } else if (type == "video_url") {
    const json* v = p.raw("video_url");
    if (!v) bad_request(p.at("video_url"), "required field is missing", "missing_field");
    media = url_media(*v, MediaKind::Video, p.at("video_url"), limits, false);
    reduced = {{"type", "video"}};
  } else if (type == "input_video") {
    const json* v = p.object("input_video");
    if (!v) bad_request(p.at("input_video"), "required field is missing", "missing_field");
    media = data_media(*v, MediaKind::Video, p.at("input_video"), limits,
                       {"mp4", "webm", "mkv", "mov", "avi", "gif"});
    reduced = {{"type", "video"}};
  } else {
    bad_request(
        p.at("type"),
        fmt::format(
            "unknown content part type '{}' (expected text, image_url, input_image, input_audio, "
            "audio_url, video_url or input_video)",
            type),
        "invalid_value");
  }
  p.reject_unknown();
  if (media) {
    if (role != "user" && role != "tool")
      bad_request(where, "media parts are only accepted in user and tool messages",
                  "invalid_value");
    if (int64_t(out.media.size()) >= limits.media.max_items)
      bad_request(where,
                  fmt::format("more than {} media items in one request", limits.media.max_items),
                  "too_many_media");
    out.media.push_back(std::move(*media));
  }
  return reduced;
}

json read_content(FieldReader& m, const std::string& role, ChatRequest& out,
                  const RequestLimits& limits) {
  const json* c = m.raw("content");
  if (!c) return nullptr;
  if (c->is_string()) {
    reject_placeholders(c->get<std::string>(), role, m.at("content"));
    return *c;
  }
  if (!c->is_array())
    bad_request(m.at("content"),
                "expected a string, an array of content parts or null, got " + json_kind(*c),
                "invalid_type");
  json parts = json::array();
  for (size_t i = 0; i < c->size(); ++i)
    parts.push_back(read_part((*c)[i], fmt::format("{}[{}]", m.at("content"), i), role, out, limits));
  return parts;
}

json read_tool_calls(const json& calls, const std::string& where) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    FieldReader c(calls[i], fmt::format("{}[{}]", where, i));
    json call = {{"type", "function"}};
    if (auto id = c.string("id")) call["id"] = *id;
    if (auto type = c.string("type"); type && *type != "function")
      bad_request(c.at("type"), "only \"function\" tool calls are supported", "invalid_value");
    const json* fn = c.object("function");
    if (!fn) bad_request(c.at("function"), "required field is missing", "missing_field");
    FieldReader f(*fn, c.at("function"));
    std::string name = f.required_string("name");
    json args = json::object();
    if (const json* a = f.raw("arguments")) {
      if (a->is_string()) {  // OpenAI sends a JSON text; the template needs the parsed object
        args = json::parse(a->get<std::string>(), nullptr, false);
        if (args.is_discarded() || !args.is_object())
          bad_request(f.at("arguments"), "expected a JSON object encoded as a string",
                      "invalid_value");
      } else if (a->is_object()) {
        args = *a;
      } else {
        bad_request(f.at("arguments"), "expected a string, got " + json_kind(*a), "invalid_type");
      }
    }
    f.reject_unknown();
    c.reject_unknown();
    call["function"] = {{"name", name}, {"arguments", args}};
    out.push_back(std::move(call));
  }
  return out;
}

json read_message(const json& msg, size_t index, ChatRequest& out, const RequestLimits& limits) {
  FieldReader m(msg, fmt::format("messages[{}]", index));
  std::string role = m.required_string("role");
  if (role != "system" && role != "developer" && role != "user" && role != "assistant" &&
      role != "tool")
    bad_request(
        m.at("role"),
        fmt::format("unknown role '{}' (expected system, developer, user, assistant or tool)",
                    role),
        "invalid_value");
  json r = {{"role", role}};
  json content = read_content(m, role, out, limits);
  if (content.is_null() && role != "assistant")
    bad_request(m.at("content"), "required for " + role + " messages", "missing_field");
  r["content"] = content;
  if (auto name = m.string("name")) r["name"] = *name;
  if (role == "assistant") {
    if (const json* calls = m.array("tool_calls"))
      r["tool_calls"] = read_tool_calls(*calls, m.at("tool_calls"));
    for (const char* key : {"reasoning_content", "reasoning"})
      if (auto s = m.string(key)) r["reasoning_content"] = *s;
    m.ignore({"refusal", "annotations", "audio"});
    if (content.is_null() && !r.contains("tool_calls"))
      bad_request(m.at("content"), "an assistant message needs content or tool_calls",
                  "missing_field");
  }
  if (role == "tool") r["tool_call_id"] = m.required_string("tool_call_id");
  m.reject_unknown();
  return r;
}

void read_tools(FieldReader& r, ChatRequest& out) {
  json tools = json::array();
  std::vector<std::string> names;
  if (const json* t = r.array("tools")) {
    for (size_t i = 0; i < t->size(); ++i) {
      FieldReader tool((*t)[i], fmt::format("tools[{}]", i));
      if (tool.required_string("type") != "function")
        bad_request(tool.at("type"), "only \"function\" tools are supported", "invalid_value");
      const json* fn = tool.object("function");
      if (!fn) bad_request(tool.at("function"), "required field is missing", "missing_field");
      FieldReader f(*fn, tool.at("function"));
      std::string name = f.required_string("name");
      if (name.empty() || name.size() > 64 ||
          name.find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
              std::string::npos)
        bad_request(f.at("name"), "must be 1-64 characters of a-z, A-Z, 0-9, _, - or .",
                    "invalid_value");
      json decl = {{"name", name}};
      if (auto d = f.string("description")) decl["description"] = *d;
      if (const json* p = f.object("parameters")) decl["parameters"] = *p;
      f.ignore({"strict"});
      f.reject_unknown();
      tool.reject_unknown();
      names.push_back(name);
      tools.push_back({{"type", "function"}, {"function", decl}});
    }
  }
  std::string choice = "auto";
  if (const json* tc = r.raw("tool_choice")) {
    if (tc->is_string()) {
      choice = tc->get<std::string>();
      if (choice != "none" && choice != "auto" && choice != "required")
        bad_request("tool_choice",
                    "expected \"none\", \"auto\", \"required\" or {\"type\":\"function\",...}",
                    "invalid_value");
      if (choice == "required") out.forced_prefix = "<|tool_call>call:";
    } else {
      FieldReader c(*tc, "tool_choice");
      if (c.required_string("type") != "function")
        bad_request("tool_choice.type", "expected \"function\"", "invalid_value");
      const json* fn = c.object("function");
      if (!fn) bad_request("tool_choice.function", "required field is missing", "missing_field");
      FieldReader f(*fn, "tool_choice.function");
      std::string name = f.required_string("name");
      f.reject_unknown();
      c.reject_unknown();
      if (std::find(names.begin(), names.end(), name) == names.end())
        bad_request("tool_choice.function.name",
                    fmt::format("'{}' is not one of the declared tools", name), "invalid_value");
      out.forced_prefix = "<|tool_call>call:" + name + "{";
    }
    if (choice != "auto" && choice != "none" && tools.empty())
      bad_request("tool_choice", "a tool is required but no tools were declared", "invalid_value");
  }
  if (choice == "none") return;  // tools not declared to the model: it answers in text
  out.tools = std::move(tools);
  out.parse_tool_calls = !out.tools.empty();
}

void read_thinking(FieldReader& r, ChatRequest& out) {
  if (auto effort = r.string("reasoning_effort")) {
    if (*effort == "none" || *effort == "minimal")
      out.enable_thinking = false;
    else if (*effort == "low" || *effort == "medium" || *effort == "high")
      out.enable_thinking = true;
    else
      bad_request("reasoning_effort", "expected none, minimal, low, medium or high",
                  "invalid_value");
  }
  if (const json* kw = r.object("chat_template_kwargs")) {  // extension (vLLM spelling)
    FieldReader k(*kw, "chat_template_kwargs");
    if (auto on = k.boolean("enable_thinking")) out.enable_thinking = *on;
    k.reject_unknown();
  }
}

}  // namespace

ChatRequest parse_chat_request(const json& body, const RequestLimits& limits) {
  FieldReader r(body, "");
  ChatRequest out;
  out.model = r.required_string("model");
  out.gen = read_generation_options(r, limits);
  if (auto mct = r.integer("max_completion_tokens", 0, std::numeric_limits<int32_t>::max()))
    out.gen.max_tokens = mct;
  if (out.gen.max_tokens && *out.gen.max_tokens == 0)
    bad_request("max_tokens", "must be at least 1", "invalid_value");
  if (r.boolean("logprobs").value_or(false)) out.gen.top_logprobs = 0;
  if (auto top = r.integer("top_logprobs", 0, 20)) {
    if (out.gen.top_logprobs < 0)
      bad_request("top_logprobs", "requires logprobs: true", "invalid_value");
    out.gen.top_logprobs = int32_t(*top);
  }
  read_ignored_and_unsupported(r);
  out.gen.json = read_response_format(r);
  read_thinking(r, out);
  read_tools(r, out);
  if (out.gen.json && !out.forced_prefix.empty())
    throw ApiError(400,
                   "response_format json_object / json_schema cannot be combined with a forced "
                   "tool_choice (\"required\" or a named function): the reply would be a tool call",
                   "response_format", "unsupported_parameter");
  const json* messages = r.array("messages");
  if (!messages) bad_request("messages", "required field is missing", "missing_field");
  if (messages->empty())
    bad_request("messages", "must contain at least one message", "invalid_value");
  if (int64_t(messages->size()) > limits.max_messages)
    bad_request("messages", fmt::format("at most {} messages", limits.max_messages),
                "invalid_value");
  out.messages = json::array();
  for (size_t i = 0; i < messages->size(); ++i)
    out.messages.push_back(read_message((*messages)[i], i, out, limits));
  r.reject_unknown();
  return out;
}

json parse_body(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions on to get the byte position for the message.
    try {
      json strict = json::parse(body);
      (void)strict;
    } catch (const json::parse_error& e) {
      throw ApiError(400, fmt::format("malformed JSON in the request body (at byte {})", e.byte),
                     "", "invalid_json");
    }
    throw ApiError(400, "malformed JSON in the request body", "", "invalid_json");
  }
  if (!j.is_object())
    throw ApiError(400, "the request body must be a JSON object, got " + json_kind(j), "",
                   "invalid_json");
  return j;
}

}  // namespace ug::server
