#include "server/media_parts.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "server/api_error.h"
#include "server/base64.h"

namespace ug::server {
namespace {

namespace fs = std::filesystem;

std::string_view mime_prefix(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image:
      return "image/";
    case MediaKind::Audio:
      return "audio/";
    case MediaKind::Video:
      return "video/";
  }
  return "";
}

void check_size(size_t bytes, const MediaPolicy& policy, const std::string& where) {
  if (int64_t(bytes) > policy.max_item_bytes)
    throw ApiError(400,
                   fmt::format("{}: media item of {} bytes exceeds the server limit of {} bytes",
                               where, bytes, policy.max_item_bytes),
                   where, "media_too_large");
}

MediaSource from_bytes(MediaKind kind, std::vector<uint8_t> bytes, const std::string& where) {
  if (bytes.empty()) bad_request(where, "empty media data", "invalid_media");
  MediaSource s;
  s.kind = kind;
  s.bytes = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  s.name = where;
  return s;
}

MediaSource from_local_file(MediaKind kind, std::string_view path_text, const MediaPolicy& policy,
                            const std::string& where) {
  if (policy.local_dir.empty())
    throw ApiError(400,
                   where +
                       ": local files are not allowed on this server (start it with "
                       "--allow-local-media DIR, or send a data: URI)",
                   where, "local_media_forbidden");
  fs::path p(path_text);
  if (!p.is_absolute()) bad_request(where, "a local media path must be absolute", "invalid_media");
  std::error_code ec;
  fs::path real = fs::canonical(p, ec);
  if (ec)
    bad_request(where, fmt::format("cannot open '{}': {}", std::string(path_text), ec.message()),
                "invalid_media");
  fs::path dir(policy.local_dir);
  auto [d, r] = std::mismatch(dir.begin(), dir.end(), real.begin(), real.end());
  if (d != dir.end())
    throw ApiError(403, where + ": the file is outside the directory this server may read", where,
                   "local_media_forbidden", "permission_error");
  if (!fs::is_regular_file(real, ec)) bad_request(where, "not a regular file", "invalid_media");
  auto size = fs::file_size(real, ec);
  if (ec) bad_request(where, "cannot read the file size", "invalid_media");
  check_size(size, policy, where);
  std::ifstream in(real, std::ios::binary);
  std::vector<uint8_t> bytes(size);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size)))
    bad_request(where, "cannot read the file", "invalid_media");
  MediaSource s = from_bytes(kind, std::move(bytes), where);
  s.name = where + " (" + real.filename().string() + ")";
  return s;
}

}  // namespace

MediaSource media_from_base64(MediaKind kind, std::string_view data, const MediaPolicy& policy,
                              const std::string& where) {
  check_size(base64_decoded_size(data), policy, where);
  std::string error;
  auto bytes = base64_decode(data, error);
  if (!bytes) bad_request(where, "invalid base64: " + error, "invalid_base64");
  return from_bytes(kind, std::move(*bytes), where);
}

MediaSource media_from_url(MediaKind kind, std::string_view url, const MediaPolicy& policy,
                           const std::string& where) {
  if (url.substr(0, 5) == "data:") {
    size_t comma = url.find(',');
    if (comma == std::string_view::npos)
      bad_request(where, "malformed data: URI (no comma)", "invalid_media");
    std::string_view header = url.substr(5, comma - 5);
    if (header.size() < 7 || header.substr(header.size() - 7) != ";base64")
      bad_request(where, "data: URIs must be base64-encoded (data:<mime>;base64,...)",
                  "invalid_media");
    std::string_view mime = header.substr(0, header.find(';'));
    if (!mime.empty() && mime != "application/octet-stream" &&
        mime.substr(0, mime_prefix(kind).size()) != mime_prefix(kind))
      bad_request(where,
                  fmt::format("data: URI of type '{}' where {}* was expected", std::string(mime),
                              std::string(mime_prefix(kind))),
                  "invalid_media");
    return media_from_base64(kind, url.substr(comma + 1), policy, where);
  }
  if (url.substr(0, 7) == "http://" || url.substr(0, 8) == "https://")
    bad_request(where, "remote URLs are not fetched by this server; send the media as a data: URI",
                "invalid_media");
  if (url.substr(0, 7) == "file://") return from_local_file(kind, url.substr(7), policy, where);
  if (!url.empty() && url[0] == '/') return from_local_file(kind, url, policy, where);
  bad_request(where,
              "expected a data: URI" +
                  std::string(policy.local_dir.empty() ? "" : " or an absolute local path"),
              "invalid_media");
}

}  // namespace ug::server
