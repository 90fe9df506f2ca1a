// The Gemma 4 tool DSL (docs tokenizer_chat.md §2.5): declarations, calls and responses as the
// chat template writes them, plus a parser that reads the DSL back into JSON. Also the few
// Python/Jinja semantics the template relies on (str.strip, str(), truthiness, dictsort).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ug {

// The DSL's string delimiter token.
inline constexpr std::string_view kToolQuote = "<|\"|>";

// --- Python / Jinja semantics ---------------------------------------------------------------

// Python str.strip(): removes Unicode whitespace (str.isspace) from both ends of UTF-8 text.
std::string_view py_strip(std::string_view text);
// Python str() of a JSON value, as `{{ value }}` prints it: strings raw, 18, 2.5, 1e-05, None,
// True/False, and Python reprs for lists/dicts (['a', 'b']).
std::string py_str(const nlohmann::json& value);
// Python repr() of a float (shortest round-trip digits, exponent form outside [1e-4, 1e16)).
std::string py_float_repr(double value);
// Python truthiness: null, false, 0, "", [], {} are false.
bool py_truthy(const nlohmann::json& value);
// ASCII upper-casing (Jinja `upper`; non-ASCII is left as is).
std::string ascii_upper(std::string_view text);
// Jinja `dictsort` (case-insensitive by key, stable). Keys equal ignoring case keep byte order,
// because nlohmann::json objects do not remember insertion order.
std::vector<std::pair<std::string, const nlohmann::json*>> dictsort(const nlohmann::json& object);

// --- Rendering ------------------------------------------------------------------------------

// Template macro format_argument: strings <|"|>s<|"|>, bools true/false, dicts {k:v} sorted
// (keys wrapped in <|"|> when escape_keys), lists [a,b], everything else Python str().
std::string format_argument(const nlohmann::json& value, bool escape_keys);
// Template macro format_function_declaration for one OpenAI-style tool
// {"type":"function","function":{name,description,parameters,response?}}, without the
// surrounding <|tool>…<tool|>. `where` names the tool in error messages.
std::string format_function_declaration(const nlohmann::json& tool, const std::string& where);
// `<|tool_call>call:NAME{…}<tool_call|>` for one OpenAI-style call {id?, function:{name,
// arguments}}. Object arguments render sorted with bare keys; string arguments are inserted
// verbatim.
std::string format_tool_call(const nlohmann::json& call, const std::string& where);
// `<|tool_response>response:NAME{…}<tool_response|>`: a mapping gives sorted key:value pairs,
// anything else {value:…}.
std::string format_tool_response(std::string_view name, const nlohmann::json& response);

// --- Parsing --------------------------------------------------------------------------------

// Parses one DSL value starting at text[pos] (leading whitespace allowed) and advances pos past
// it. Accepts <|"|>strings<|"|>, "JSON strings", bare or quoted keys, numbers, true/false,
// null/None, nested {} and []; an unquoted word is read as a string. Throws ug::Error on
// malformed input, naming the offset.
nlohmann::json parse_tool_value(std::string_view text, size_t& pos);

}  // namespace ug
