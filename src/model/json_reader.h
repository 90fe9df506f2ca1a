// Typed, located access to JSON config fields: every error names the file and the dotted field path,
// what was expected and what was found. Missing optional fields take the HF class default.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ug {

class JsonReader {
 public:
  JsonReader(const nlohmann::json& value, std::string source, std::string path = "")
      : value_(&value), source_(std::move(source)), path_(std::move(path)) {}

  bool has(const std::string& key) const;
  JsonReader child(const std::string& key) const;                          // must exist and be an object
  std::optional<JsonReader> optional_child(const std::string& key) const;  // absent or null -> nullopt

  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_number(const std::string& key) const;
  double get_number(const std::string& key, double fallback) const;
  std::optional<double> get_optional_number(const std::string& key) const;  // absent/null -> nullopt
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;  // accepts a scalar as [x]
  std::vector<std::string> get_string_list(const std::string& key) const;

  const nlohmann::json& json() const { return *value_; }
  std::string where(const std::string& key) const;  // "source: a.b.key"
  [[noreturn]] void fail_field(const std::string& key, const std::string& expected) const;

 private:
  const nlohmann::json& at(const std::string& key) const;
  const nlohmann::json* value_;
  std::string source_;
  std::string path_;
};

}  // namespace ug
