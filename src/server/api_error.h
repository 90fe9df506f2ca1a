// OpenAI-style API errors: an HTTP status plus the JSON error object every OpenAI client
// understands,
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "messages[0].role",
//   "code": null}}
// Anything a request can get wrong is thrown as an ApiError by the parsing/validation code and
// turned into a response in one place (http_server.cc).
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace ug::server {

struct ApiError : std::runtime_error {
  int status = 400;
  std::string type = "invalid_request_error";  // OpenAI error "type"
  std::string param;                           // the offending field (JSON path), "" = none
  std::string code;                            // machine-readable code, "" = null
  int retry_after_s = 0;                       // > 0: send a Retry-After header (429 / 503)

  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "");
};

// 400 invalid_request_error naming `param`.
[[noreturn]] void bad_request(const std::string& param, const std::string& message,
                              const std::string& code = "");

// {"error": {...}} for an ApiError.
nlohmann::json error_body(const ApiError& e);

// The OpenAI error type for a status when none is given (400 -> invalid_request_error, 401 ->
// authentication_error, 404 -> not_found_error, 429 -> rate_limit_error, 5xx -> server_error ...).
std::string default_error_type(int status);

}  // namespace ug::server
