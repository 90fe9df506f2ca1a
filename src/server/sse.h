// Server-sent events framing for streaming responses (text/event-stream): one `data: <json>` event
// per chunk, a final `data: [DONE]`, and comment lines as keep-alives (clients ignore them; a
// failed write tells the server that the client has gone).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ug::server {

// JSON text for the wire: invalid UTF-8 (never expected) is replaced, not thrown.
std::string dump_json(const nlohmann::json& value);

std::string sse_event(const nlohmann::json& data);  // "data: {...}\n\n"
std::string sse_done();                             // "data: [DONE]\n\n"
std::string sse_keepalive();                        // ": keep-alive\n\n"

}  // namespace ug::server
