#include "model/json_reader.h"

#include <cmath>

#include "core/error.h"

namespace ug {
namespace {
std::string describe(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return std::string(v.type_name()) + " " + s;
}
}  // namespace

std::string JsonReader::where(const std::string& key) const {
  return source_ + ": " + (path_.empty() ? key : path_ + "." + key);
}

void JsonReader::fail_field(const std::string& key, const std::string& expected) const {
  if (!value_->is_object() || !value_->contains(key)) fail("{}: missing (expected {})", where(key), expected);
  fail("{}: expected {}, got {}", where(key), expected, describe((*value_)[key]));
}

bool JsonReader::has(const std::string& key) const {
  return value_->is_object() && value_->contains(key) && !(*value_)[key].is_null();
}

const nlohmann::json& JsonReader::at(const std::string& key) const {
  if (!has(key)) fail("{}: required field is missing", where(key));
  return (*value_)[key];
}

JsonReader JsonReader::child(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_object()) fail_field(key, "an object");
  return JsonReader(v, source_, path_.empty() ? key : path_ + "." + key);
}

std::optional<JsonReader> JsonReader::optional_child(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return child(key);
}

int64_t JsonReader::get_int(const std::string& key) const {
  const auto& v = at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
  }
  fail_field(key, "an integer");
}

int64_t JsonReader::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double JsonReader::get_number(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_number()) fail_field(key, "a number");
  double d = v.get<double>();
  if (!std::isfinite(d)) fail_field(key, "a finite number");
  return d;
}

double JsonReader::get_number(const std::string& key, double fallback) const {
  return has(key) ? get_number(key) : fallback;
}

std::optional<double> JsonReader::get_optional_number(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_number(key);
}

bool JsonReader::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = (*value_)[key];
  if (!v.is_boolean()) fail_field(key, "true or false");
  return v.get<bool>();
}

std::string JsonReader::get_string(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_string()) fail_field(key, "a string");
  return v.get<std::string>();
}

std::string JsonReader::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

std::vector<int64_t> JsonReader::get_int_list(const std::string& key) const {
  const auto& v = at(key);
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array()) fail_field(key, "an integer or a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer()) fail_field(key, "a list of integers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<std::string> JsonReader::get_string_list(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_array()) fail_field(key, "a list of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) fail_field(key, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace ug
