// .npy reading (fixtures, all versions, conversions) and writing, plus malformed-file errors.
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "test_util.h"

namespace ug {
namespace {

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected: " << fragments[0];
  } catch (const Error& e) {
    for (const auto& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// A hand-made npy file: version `major`, header dict `dict`, then raw `data`.
std::string make_npy(int major, const std::string& dict, const std::string& data) {
  std::string s = "\x93NUMPY";
  s += char(major);
  s += char(0);
  const size_t len_bytes = major == 1 ? 2 : 4;
  for (size_t i = 0; i < len_bytes; ++i) s += char((dict.size() >> (8 * i)) & 0xff);
  return s + dict + data;
}

NpyArray parse(const std::string& s) {
  return parse_npy(reinterpret_cast<const std::byte*>(s.data()), s.size(), "t.npy");
}

TEST(Npy, ReadsFixtureInputIds) {
  auto a = read_npy(test::data_path("tiny_kv_eq/text_short/input_ids.npy"));
  EXPECT_EQ(a.dtype, DType::I64);
  EXPECT_EQ(a.shape, std::vector<int64_t>{40});
  auto ids = npy_as_i64(a);
  ASSERT_EQ(ids.size(), 40u);
  EXPECT_EQ((std::vector<int64_t>(ids.begin(), ids.begin() + 4)),
            (std::vector<int64_t>{2, 243, 676, 95}));
  for (int64_t id : ids) EXPECT_TRUE(id >= 0 && id < 1024) << id;
}

TEST(Npy, ReadsFixtureLogitsAndHiddenStates) {
  auto a = read_npy(test::data_path("tiny_kv_eq/text_short/logits_f32.npy"));
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{40, 1024}));
  auto v = npy_as_f32(a);
  ASSERT_EQ(v.size(), 40u * 1024u);
  for (float x : v) ASSERT_TRUE(std::isfinite(x) && std::fabs(x) <= 30.0f) << x;  // softcap 30
  auto h = read_npy(test::data_path("tiny_kv_eq/text_short/hidden_states_f32.npy"));
  EXPECT_EQ(h.shape, (std::vector<int64_t>{7, 40, 64}));
  expect_error([&] { npy_as_i64(a); }, {"not an integer array"});
}

TEST(Npy, WriteThenReadRoundTrips) {
  test::TempDir dir;
  std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
  write_npy(dir.file("f.npy"), f.data(), {2, 3});
  auto a = read_npy(dir.file("f.npy"));
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(npy_as_f32(a), f);

  std::vector<int64_t> i = {-5, 0, int64_t(1) << 40};
  write_npy(dir.file("i.npy"), i.data(), {3});
  auto b = read_npy(dir.file("i.npy"));
  EXPECT_EQ(b.dtype, DType::I64);
  EXPECT_EQ(npy_as_i64(b), i);
  EXPECT_EQ(npy_as_f32(b)[2], float(int64_t(1) << 40));

  std::vector<uint8_t> u = {0, 255, 7, 9};
  write_npy(dir.file("u.npy"), u.data(), {2, 1, 2});
  auto c = read_npy(dir.file("u.npy"));
  EXPECT_EQ(c.dtype, DType::U8);
  EXPECT_EQ(npy_as_i64(c), (std::vector<int64_t>{0, 255, 7, 9}));

  float s = 42.0f;  // 0-d array
  write_npy(dir.file("s.npy"), &s, {});
  auto d = read_npy(dir.file("s.npy"));
  EXPECT_TRUE(d.shape.empty());
  EXPECT_EQ(npy_as_f32(d), std::vector<float>{42.0f});

  write_npy(dir.file("e.npy"), f.data(), {0, 3});  // empty
  EXPECT_EQ(read_npy(dir.file("e.npy")).numel(), 0);

  // numpy's layout: data starts 64-byte aligned and the header ends with a newline.
  std::string raw = read_text_file(dir.file("f.npy"));
  EXPECT_EQ(raw.size() % 64, 24u);
  EXPECT_EQ(raw[raw.size() - 25], '\n');
  EXPECT_NE(raw.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
            std::string::npos);
  EXPECT_NE(read_text_file(dir.file("i.npy")).find("'shape': (3,)"), std::string::npos);
}

TEST(Npy, HugeHeaderUsesVersion2) {
  test::TempDir dir;
  std::vector<int64_t> shape(25000, 1);  // the dict no longer fits v1's 16-bit length
  float x = 3.0f;
  write_npy(dir.file("v2.npy"), &x, shape);
  std::string raw = read_text_file(dir.file("v2.npy"));
  EXPECT_EQ(raw[6], 2);
  auto a = read_npy(dir.file("v2.npy"));
  EXPECT_EQ(a.shape.size(), 25000u);
  EXPECT_EQ(npy_as_f32(a), std::vector<float>{3.0f});
}

TEST(Npy, ReadsVersions2And3AndOtherDtypes) {
  const std::string data("\x01\x00\x02\x00", 4);
  auto a = parse(make_npy(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }\n", data));
  EXPECT_EQ(npy_as_i64(a), (std::vector<int64_t>{1, 2}));
  auto b =
      parse(make_npy(3, "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (1L,)}", data));
  EXPECT_EQ(npy_as_i64(b), std::vector<int64_t>{0x00020001});
  auto c = parse(make_npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }",
                          std::string("\x01\x00\x00\x01", 4)));
  EXPECT_EQ(c.dtype, DType::BOOL);
  EXPECT_EQ(npy_as_f32(c), (std::vector<float>{1, 0, 0, 1}));
  // '<u2' carries raw bfloat16 bits: 0x3fc0 = 1.5, 0xc000 = -2.
  auto d = parse(make_npy(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }",
                          std::string("\xc0\x3f\x00\xc0", 4)));
  EXPECT_EQ(d.dtype, DType::BF16);
  EXPECT_EQ(npy_as_f32(d), (std::vector<float>{1.5f, -2.0f}));
  auto e = parse(make_npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }",
                          std::string("\0\0\0\0\0\0\xf8\x3f", 8)));
  EXPECT_EQ(npy_as_f32(e), std::vector<float>{1.5f});
}

TEST(Npy, Errors) {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  expect_error([] { parse(""); }, {"t.npy", "only 0 bytes"});
  expect_error([] { parse("GARBAGE_NOT_NPY"); }, {"t.npy", "bad magic"});
  expect_error([&] { parse(make_npy(7, ok_dict, std::string(16, '\0'))); }, {"t.npy", "version 7"});
  expect_error([&] { parse(make_npy(1, ok_dict, std::string(10, '\0'))); },
               {"t.npy", "truncated npy data", "needs 16 bytes, file has 10"});
  expect_error([&] { parse(make_npy(1, ok_dict, std::string(20, '\0'))); },
               {"t.npy", "4 bytes after the data"});
  expect_error([&] { parse(make_npy(1, ok_dict, "").substr(0, 30)); },
               {"t.npy", "truncated npy header"});
  expect_error(
      [] {
        parse(make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                       std::string(16, '\0')));
      },
      {"t.npy", "fortran-order"});
  expect_error(
      [] {
        parse(make_npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                       std::string(8, '\0')));
      },
      {"t.npy", "unsupported npy dtype '<c8'"});
  expect_error(
      [] {
        parse(make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                       std::string(4, '\0')));
      },
      {"t.npy", "big-endian"});
  expect_error(
      [] { parse(make_npy(1, "{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0'))); },
      {"t.npy", "lacks"});
  expect_error(
      [] { parse(make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "")); },
      {"t.npy", "malformed npy header"});
  expect_error(
      [] {
        parse(make_npy(1,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, "
                       "99999999999, 99999999999), }",
                       ""));
      },
      {"t.npy", "overflows"});
  test::TempDir dir;
  std::string file = dir.file("cut.npy");
  float f[4] = {1, 2, 3, 4};
  write_npy(file, f, {4});
  std::string raw = read_text_file(file);
  test::write_file(file, raw.substr(0, raw.size() - 3));
  expect_error([&] { read_npy(file); }, {file, "truncated npy data"});
  expect_error([&] { read_npy(dir.file("absent.npy")); }, {dir.file("absent.npy")});
}

}  // namespace
}  // namespace ug
