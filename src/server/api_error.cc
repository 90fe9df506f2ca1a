#include "server/api_error.h"

#include <fmt/format.h>

namespace ug::server {

std::string default_error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 408:
    case 504:
      return "timeout_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

ApiError::ApiError(int status_, std::string message, std::string param_, std::string code_,
                   std::string type_)
    : std::runtime_error(std::move(message)),
      status(status_),
      type(type_.empty() ? default_error_type(status_) : std::move(type_)),
      param(std::move(param_)),
      code(std::move(code_)) {}

void bad_request(const std::string& param, const std::string& message, const std::string& code) {
  throw ApiError(400, param.empty() ? message : fmt::format("{}: {}", param, message), param, code);
}

nlohmann::json error_body(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()}, {"type", e.type}};
  err["param"] = e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param);
  err["code"] = e.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.code);
  return {{"error", err}};
}

}  // namespace ug::server
