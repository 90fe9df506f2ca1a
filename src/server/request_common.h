// Fields both endpoints share (sampling, stop, n, stream, seed, ...); used by chat_request.cc and
// completion_request.cc.
#pragma once

#include "server/json_fields.h"
#include "server/request.h"

namespace ug::server {

// Reads everything in GenerationOptions except the logprobs fields (whose schema differs per
// endpoint).
GenerationOptions read_generation_options(FieldReader& r, const RequestLimits& limits);

// Accepted-and-ignored OpenAI fields, and the ones that are refused with a clear message when used.
void read_ignored_and_unsupported(FieldReader& r);

}  // namespace ug::server
