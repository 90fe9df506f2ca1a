// Fields both endpoints share (sampling, stop, n, stream, seed, ...); used by chat_request.cc and
// completion_request.cc.
#pragma once

#include "server/json_fields.h"
#include "server/request.h"

namespace ug::server {

// Reads everything in GenerationOptions except the logprobs fields (whose schema differs per
// endpoint).
GenerationOptions read_generation_options(FieldReader& r, const RequestLimits& limits);

// response_format: text -> null; json_object / json_schema -> the compiled grammar. Schema errors are
// a 400 naming the keyword's path (unsupported_parameter for keywords this server does not enforce).
std::shared_ptr<const JsonGrammar> read_response_format(FieldReader& r);

// Accepted-and-ignored OpenAI fields, and the ones that are refused with a clear message when used.
void read_ignored_and_unsupported(FieldReader& r);

}  // namespace ug::server
