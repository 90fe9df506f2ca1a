// Typed, located reads of a JSON object from a request body. Every read marks the key as known;
// after reading, reject_unknown() turns any other key into a 400 naming it. JSON null counts as
// absent (clients often send null for "not set"). Errors are ApiError 400 with the field's path as
// `param`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace ug::server {

// "a JSON object" / "a string" ... for error messages.
std::string json_kind(const nlohmann::json& v);

class FieldReader {
 public:
  // `path` names the object in errors ("" for the request body, "messages[2]" ...). Throws unless
  // object.
  FieldReader(const nlohmann::json& object, std::string path);

  std::string at(std::string_view key) const;       // path of a key: "messages[2].role"
  bool has(std::string_view key);                   // present and not null (marks the key known)
  const nlohmann::json* raw(std::string_view key);  // nullptr when absent or null

  std::optional<std::string> string(std::string_view key);
  std::string required_string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  // Any JSON number within [lo, hi].
  std::optional<double> number(std::string_view key, double lo, double hi);
  // An integer (a float with an integral value is accepted) within [lo, hi].
  std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi);
  const nlohmann::json* array(std::string_view key);
  const nlohmann::json* object(std::string_view key);
  // Known fields that are accepted and have no effect.
  void ignore(std::initializer_list<std::string_view> keys);
  // 400 "unknown field" for any key never read or ignored.
  void reject_unknown() const;

 private:
  [[noreturn]] void wrong_type(std::string_view key, const char* expected,
                               const nlohmann::json& got) const;
  const nlohmann::json& obj_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace ug::server
