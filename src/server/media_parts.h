// Media of a request body -> MediaSource (runtime/multimodal_prompt.h): data: URIs and raw base64
// are decoded here with size limits; local files are read only when the server was started with
// --allow-local-media DIR, and only from inside DIR (symlinks resolved first). Remote http(s) URLs
// are never fetched. Decoding the media itself (and reporting broken files) happens later, in
// MediaEncoder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/multimodal_prompt.h"

namespace ug::server {

struct MediaPolicy {
  int64_t max_item_bytes = int64_t(32) << 20;  // encoded (decoded from base64) size of one item
  int64_t max_items = 16;                      // media items in one request
  std::string local_dir;                       // canonical directory; empty = local files refused
};

// `url`: "data:<mime>;base64,<data>" or, when allowed, "file:///abs/path" or "/abs/path".
// `where` names the field in errors (e.g. "messages[1].content[0].image_url.url").
MediaSource media_from_url(MediaKind kind, std::string_view url, const MediaPolicy& policy,
                           const std::string& where);
// Raw base64 (input_audio.data).
MediaSource media_from_base64(MediaKind kind, std::string_view data, const MediaPolicy& policy,
                              const std::string& where);

}  // namespace ug::server
