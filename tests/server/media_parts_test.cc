// base64 and data: URI decoding with limits; local files only inside the allowed directory.
#include "server/media_parts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/api_error.h"
#include "server/base64.h"
#include "test_util.h"

namespace ug::server {
namespace {

namespace fs = std::filesystem;

std::string str(const MediaSource& s) { return std::string(s.bytes->begin(), s.bytes->end()); }

ApiError error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return ApiError(0, "");
}

TEST(Base64, RoundTripAndStrictness) {
  std::string error;
  for (std::string s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    std::string enc = base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    auto dec = base64_decode(enc, error);
    ASSERT_TRUE(dec) << error;
    EXPECT_EQ(std::string(dec->begin(), dec->end()), s);
    if (enc.size() > 0 && enc.back() == '=') {  // padding is optional
      std::string bare = enc.substr(0, enc.find('='));
      dec = base64_decode(bare, error);
      ASSERT_TRUE(dec) << error;
      EXPECT_EQ(std::string(dec->begin(), dec->end()), s);
    }
  }
  EXPECT_FALSE(base64_decode("ab$d", error));
  EXPECT_EQ(error, "invalid character '$' at offset 2");
  EXPECT_FALSE(base64_decode("abcde", error));  // 1 leftover character cannot encode a byte
  EXPECT_FALSE(base64_decode("ab=c", error));
  EXPECT_FALSE(base64_decode("ab\ncd", error));
}

TEST(MediaParts, DataUris) {
  MediaPolicy policy;
  MediaSource s = media_from_url(MediaKind::Image, "data:image/png;base64,aGVsbG8=", policy, "x");
  EXPECT_EQ(str(s), "hello");
  EXPECT_EQ(s.kind, MediaKind::Image);
  EXPECT_EQ(s.name, "x");
  EXPECT_EQ(str(media_from_url(MediaKind::Audio, "data:;base64,aGVsbG8=", policy, "x")), "hello");
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, "data:audio/wav;base64,aGVsbG8=", policy, "x");
            }).code,
            "invalid_media");
  EXPECT_EQ(
      error_of([&] { media_from_url(MediaKind::Image, "data:image/png,hello", policy, "x"); }).code,
      "invalid_media");
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, "data:image/png;base64,a!b", policy, "x");
            }).code,
            "invalid_base64");
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, "data:image/png;base64,", policy, "x");
            }).code,
            "invalid_media");
  EXPECT_NE(std::string(error_of([&] {
                          media_from_url(MediaKind::Image, "https://example.com/a.png", policy,
                                         "x");
                        }).what())
                .find("not fetched"),
            std::string::npos);
  policy.max_item_bytes = 4;
  ApiError big = error_of([&] { media_from_base64(MediaKind::Audio, "aGVsbG8=", policy, "x"); });
  EXPECT_EQ(big.code, "media_too_large");
  EXPECT_EQ(big.param, "x");
}

TEST(MediaParts, LocalFilesOnlyInsideTheAllowedDirectory) {
  test::TempDir tmp;
  fs::create_directories(tmp.file("allowed"));
  test::write_file(tmp.file("allowed/a.png"), "PNGDATA");
  test::write_file(tmp.file("secret.txt"), "SECRET");
  fs::create_symlink(tmp.file("secret.txt"), tmp.file("allowed/link.png"));
  MediaPolicy policy;
  // Refused without --allow-local-media.
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, tmp.file("allowed/a.png"), policy, "x");
            }).code,
            "local_media_forbidden");
  policy.local_dir = fs::canonical(tmp.file("allowed")).string();
  EXPECT_EQ(str(media_from_url(MediaKind::Image, tmp.file("allowed/a.png"), policy, "x")),
            "PNGDATA");
  EXPECT_EQ(
      str(media_from_url(MediaKind::Image, "file://" + tmp.file("allowed/a.png"), policy, "x")),
      "PNGDATA");
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, tmp.file("secret.txt"), policy, "x");
            }).status,
            403);
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, tmp.file("allowed/../secret.txt"), policy, "x");
            }).status,
            403);
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, tmp.file("allowed/link.png"), policy, "x");
            }).status,
            403);
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, tmp.file("allowed/none.png"), policy, "x");
            }).status,
            400);
  EXPECT_EQ(error_of([&] { media_from_url(MediaKind::Image, "relative.png", policy, "x"); }).status,
            400);
  // A sibling directory sharing the prefix ("allowed2") is outside.
  fs::create_directories(tmp.file("allowed2"));
  test::write_file(tmp.file("allowed2/b.png"), "B");
  EXPECT_EQ(error_of([&] {
              media_from_url(MediaKind::Image, tmp.file("allowed2/b.png"), policy, "x");
            }).status,
            403);
}

}  // namespace
}  // namespace ug::server
