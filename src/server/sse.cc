#include "server/sse.h"

namespace ug::server {

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_event(const nlohmann::json& data) { return "data: " + dump_json(data) + "\n\n"; }
std::string sse_done() { return "data: [DONE]\n\n"; }
std::string sse_keepalive() { return ": keep-alive\n\n"; }

}  // namespace ug::server
