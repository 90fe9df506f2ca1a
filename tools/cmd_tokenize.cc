// unigemma tokenize: encodes text to ids (printed as a one-line JSON array, no BOS added) or, with
// --decode, decodes ids (a JSON array or comma/space-separated list) and prints the exact text with
// no trailing newline.
#include <climits>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace ug::cli {
namespace {

int32_t parse_id(const std::string& token, const std::string& origin) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(token, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  UG_CHECK(used == token.size() && v >= INT32_MIN && v <= INT32_MAX, "{}: \"{}\" is not a token id", origin, token);
  return int32_t(v);
}

std::vector<int32_t> parse_ids(const std::string& text, const std::string& origin) {
  size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<int32_t> ids;
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}: invalid JSON: {}", origin, e.what());
    }
    UG_CHECK(j.is_array(), "{}: expected a JSON array of ids", origin);
    for (size_t i = 0; i < j.size(); ++i) {
      UG_CHECK(j[i].is_number_integer(), "{}: element {} is not an integer: {}", origin, i, j[i].dump());
      ids.push_back(parse_id(j[i].dump(), origin));
    }
    return ids;
  }
  std::string token;
  for (size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : ',';
    if (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (!token.empty()) ids.push_back(parse_id(token, origin));
      token.clear();
    } else {
      token.push_back(c);
    }
  }
  return ids;
}

std::string ids_to_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

RegisterCommand reg("tokenize", "Encode text to token ids, or decode ids (--decode)", [](CLI::App& sub) {
  struct Options {
    std::string tokenizer, text, file;
    bool decode = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--tokenizer", o->tokenizer, "tokenizer.json (tokenizer_config.json beside it is read)")->required();
  auto* text = sub.add_option("--text", o->text, "input text (or ids with --decode)");
  auto* file = sub.add_option("--file", o->file, "read the input from this file");
  text->excludes(file);
  sub.add_flag("--decode", o->decode, "input is a JSON array or comma-separated ids; print the text");
  return [o, text, file]() -> int {
    UG_CHECK(text->count() + file->count() == 1, "tokenize: give exactly one of --text or --file");
    const std::string input = file->count() ? read_text_file(o->file) : o->text;
    const std::string origin = file->count() ? o->file : std::string("--text");
    Tokenizer tok = Tokenizer::from_file(o->tokenizer);
    if (o->decode) {
      std::string out = tok.decode(parse_ids(input, origin));
      std::fwrite(out.data(), 1, out.size(), stdout);
    } else {
      std::printf("%s\n", ids_to_json(tok.encode(input)).c_str());
    }
    return 0;
  };
});

}  // namespace
}  // namespace ug::cli
