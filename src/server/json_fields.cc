#include "server/json_fields.h"

#include <fmt/format.h>

#include <cmath>

#include "server/api_error.h"

namespace ug::server {

using nlohmann::json;

std::string json_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

FieldReader::FieldReader(const json& object, std::string path)
    : obj_(object), path_(std::move(path)) {
  if (!obj_.is_object())
    bad_request(path_, fmt::format("expected a JSON object, got {}", json_kind(obj_)),
                "invalid_type");
}

std::string FieldReader::at(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const json* FieldReader::raw(std::string_view key) {
  known_.emplace(key);
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool FieldReader::has(std::string_view key) { return raw(key) != nullptr; }

void FieldReader::wrong_type(std::string_view key, const char* expected, const json& got) const {
  bad_request(at(key), fmt::format("expected {}, got {}", expected, json_kind(got)),
              "invalid_type");
}

std::optional<std::string> FieldReader::string(std::string_view key) {
  const json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string", *v);
  return v->get<std::string>();
}

std::string FieldReader::required_string(std::string_view key) {
  auto s = string(key);
  if (!s) bad_request(at(key), "required field is missing", "missing_field");
  return *s;
}

std::optional<bool> FieldReader::boolean(std::string_view key) {
  const json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(key, "a boolean", *v);
  return v->get<bool>();
}

std::optional<double> FieldReader::number(std::string_view key, double lo, double hi) {
  const json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number", *v);
  double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    bad_request(at(key), fmt::format("must be between {} and {}, got {}", lo, hi, x),
                "invalid_value");
  return x;
}

std::optional<int64_t> FieldReader::integer(std::string_view key, int64_t lo, int64_t hi) {
  const json* v = raw(key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    x = u > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(u);
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) &&
             v->get<double>() == std::floor(v->get<double>()) &&
             std::fabs(v->get<double>()) < 9e18) {
    x = int64_t(v->get<double>());
  } else {
    wrong_type(key, "an integer", *v);
  }
  if (x < lo || x > hi)
    bad_request(at(key), fmt::format("must be between {} and {}, got {}", lo, hi, x),
                "invalid_value");
  return x;
}

const json* FieldReader::array(std::string_view key) {
  const json* v = raw(key);
  if (v && !v->is_array()) wrong_type(key, "an array", *v);
  return v;
}

const json* FieldReader::object(std::string_view key) {
  const json* v = raw(key);
  if (v && !v->is_object()) wrong_type(key, "an object", *v);
  return v;
}

void FieldReader::ignore(std::initializer_list<std::string_view> keys) {
  for (auto k : keys) known_.emplace(k);
}

void FieldReader::reject_unknown() const {
  for (auto it = obj_.begin(); it != obj_.end(); ++it)
    if (!known_.count(it.key()))
      bad_request(at(it.key()), "unknown field (this server rejects fields it does not implement)",
                  "unknown_field");
}

}  // namespace ug::server
