// Safetensors reading: header validation errors (each located and specific), the streaming writer
// round trip, and that opening a file never touches tensor data pages.
#include "io/safetensors.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "io/safetensors_writer.h"
#include "test_util.h"

namespace ug {
namespace {

// A whole safetensors file: length prefix, header text, then `data_bytes` zero bytes.
std::string make_file(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return s + header + std::string(data_bytes, '\0');
}

SafetensorsHeader parse(const std::string& file) {
  return parse_safetensors(reinterpret_cast<const std::byte*>(file.data()), file.size(),
                           "bad.safetensors");
}

// Expects parsing to throw a ug::Error naming the file and containing every fragment.
void expect_parse_error(const std::string& file, const std::vector<std::string>& fragments) {
  try {
    parse(file);
    ADD_FAILURE() << "no error; expected: " << fragments[0];
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

TEST(SafetensorsParse, ValidHeader) {
  auto h = parse(make_file(R"({"__metadata__":{"format":"pt"},)"
                           R"("b":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},)"
                           R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("s":{"dtype":"I64","shape":[],"data_offsets":[32,40]},)"
                           R"("z":{"dtype":"U8","shape":[0,5],"data_offsets":[28,28]}}  )",
                           40));
  ASSERT_EQ(h.tensors.size(), 4u);
  EXPECT_EQ(h.tensors[0].name, "a");  // sorted by name
  EXPECT_EQ(h.tensors[1].name, "b");
  EXPECT_EQ(h.tensors[1].dtype, DType::BF16);
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].nbytes, 12u);
  EXPECT_EQ(h.tensors[1].numel(), 6);
  EXPECT_EQ(h.tensors[2].numel(), 1);  // scalar
  EXPECT_EQ(h.tensors[3].numel(), 0);
  EXPECT_EQ(h.tensors[0].file, "bad.safetensors");
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.tensors[1].data - h.tensors[0].data, 16);
}

TEST(SafetensorsParse, EmptyAndShortFiles) {
  expect_parse_error("", {"empty file"});
  expect_parse_error("abcde", {"only 5 bytes", "8-byte header length"});
}

TEST(SafetensorsParse, HeaderLengthBeyondFile) {
  std::string f = make_file("{}", 0);
  f[0] = char(0xe8);  // claims 1000 bytes of header; the file has 10
  f[1] = char(0x03);
  expect_parse_error(f, {"header length 1000 exceeds the file size"});
  std::string huge(16, '\xff');  // 2^64-1: must not overflow the size check
  expect_parse_error(huge, {"exceeds the file size"});
}

TEST(SafetensorsParse, HeaderNotJsonOrNotObject) {
  expect_parse_error(make_file("{\"a\": nope}", 0), {"header is not valid JSON"});
  expect_parse_error(make_file("[1, 2]", 0), {"header JSON is not an object", "array"});
  expect_parse_error(make_file(std::string(5000, '[') + std::string(5000, ']'), 0),
                     {"nests deeper"});
}

TEST(SafetensorsParse, BadEntries) {
  auto one = [](const std::string& entry, size_t data = 64) {
    return make_file("{\"w\":" + entry + "}", data);
  };
  expect_parse_error(one(R"({"dtype":"Q7","shape":[1],"data_offsets":[0,1]})"),
                     {"tensor 'w'", "unknown dtype 'Q7'"});
  expect_parse_error(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"),
                     {"tensor 'w'", "shape[0] is -2"});
  expect_parse_error(one(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})"),
                     {"tensor 'w'", "shape[0] is 2.5", "non-negative integer"});
  expect_parse_error(one(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"),
                     {"tensor 'w'", "shape[0]"});
  expect_parse_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,800]})"),
                     {"tensor 'w'", "out of range", "64 bytes"});
  expect_parse_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[16,8]})"),
                     {"tensor 'w'", "begin > end"});
  expect_parse_error(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"),
                     {"tensor 'w'", "size mismatch", "needs 12"});
  expect_parse_error(
      one(R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]})"),
      {"tensor 'w'", "overflows"});
  expect_parse_error(one(R"({"dtype":"F32","data_offsets":[0,0]})"), {"tensor 'w'", "'shape'"});
  expect_parse_error(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"),
                     {"tensor 'w'", "data_offsets"});
  expect_parse_error(one("7"), {"tensor 'w'", "must be an object"});
}

TEST(SafetensorsParse, OverlapDuplicateAndMetadata) {
  expect_parse_error(make_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                               16),
                     {"'a'", "'b'", "overlap"});
  expect_parse_error(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                               R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                               16),
                     {"tensor 'a' appears twice"});
  expect_parse_error(make_file(R"({"__metadata__":{"format":1}})", 0),
                     {"__metadata__ 'format' must be a string"});
  expect_parse_error(make_file(R"({"__metadata__":[]})", 0), {"__metadata__ must be an object"});
}

TEST(SafetensorsFile, ErrorsNameThePath) {
  test::TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  test::write_file(path, "");
  try {
    SafetensorsFile f(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": empty file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SafetensorsFile(dir.file("missing.safetensors")), Error);
}

// Parsing must read only the header: the data pages are made inaccessible, so any access crashes.
TEST(SafetensorsParse, NeverTouchesDataPages) {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t data_pages = 4;
  std::string header = R"({"a":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]},)"
                       R"("b":{"dtype":"BF16","shape":[3,1024],"data_offsets":[4096,10240]}})";
  header.append(page - 8 - header.size(), ' ');  // data starts exactly on page 1
  const size_t size = page * (1 + data_pages);
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  std::string file = make_file(header, 0);
  std::memcpy(mem, file.data(), file.size());
  auto* base = static_cast<std::byte*>(mem);
  ASSERT_EQ(::mprotect(base + page, page * data_pages, PROT_NONE), 0);
  auto h = parse_safetensors(base, size, "guarded.safetensors");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].data, base + page);
  EXPECT_EQ(h.tensors[1].data, base + page + 4096);
  ::munmap(mem, size);
}

// The same on a real mapped file: a sparse 1 GiB checkpoint opens without paging its data in.
TEST(SafetensorsFile, OpenLeavesDataPagesNonResident) {
  test::TempDir dir;
  const std::string path = dir.file("sparse.safetensors");
  const uint64_t tensor = uint64_t(256) << 20;
  std::string header = "{";
  for (int i = 0; i < 4; ++i)
    header += fmt::format(R"({}"t{}":{{"dtype":"BF16","shape":[{}],"data_offsets":[{},{}]}})",
                          i ? "," : "", i, tensor / 2, i * tensor, (i + 1) * tensor);
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  test::write_file(path, make_file(header, 0));
  std::filesystem::resize_file(path, 8 + header.size() + 4 * tensor);  // a hole: no disk used

  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 4u);
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const std::byte* map = f.mapping().data();
  // Skip the first 16 MiB: the kernel may read ahead around the header page.
  const size_t from = (size_t(16) << 20) / page * page,
               len = f.mapping().size() / page * page - from;
  std::vector<unsigned char> vec(len / page);
  ASSERT_EQ(::mincore(const_cast<std::byte*>(map) + from, len, vec.data()), 0);
  size_t resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  EXPECT_EQ(resident, 0u);
  // Sanity check of the method: touching a page makes it resident.
  volatile std::byte b = f.tensors()[3].data[12345];
  (void)b;
  const size_t touched = size_t(f.tensors()[3].data + 12345 - map) / page * page;
  ASSERT_EQ(::mincore(const_cast<std::byte*>(map) + touched, page, vec.data()), 0);
  EXPECT_EQ(vec[0] & 1, 1);
}

// ---- writer ----

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  return v;
}

TensorToWrite from_bytes(std::string name, DType dt, std::vector<int64_t> shape,
                         const std::vector<std::byte>* bytes) {
  return {std::move(name), dt, std::move(shape), [bytes](size_t off, std::span<std::byte> out) {
            std::memcpy(out.data(), bytes->data() + off, out.size());
          }};
}

TEST(SafetensorsWriter, RoundTripSeveralDtypes) {
  test::TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  auto u8 = pattern(7, 1), f32 = pattern(4 * 6, 2), bf16 = pattern(2 * 5, 3),
       i64 = pattern(8 * 3, 4), f16 = pattern(2 * 4, 5), boolean = pattern(3, 6),
       scalar = pattern(4, 7);
  for (auto& b : boolean) b &= std::byte{1};
  std::vector<std::byte> none;
  std::vector<TensorToWrite> ts = {from_bytes("u8", DType::U8, {7}, &u8),
                                   from_bytes("f32", DType::F32, {2, 3}, &f32),
                                   from_bytes("bf16", DType::BF16, {5}, &bf16),
                                   from_bytes("i64", DType::I64, {3, 1}, &i64),
                                   from_bytes("f16", DType::F16, {2, 2}, &f16),
                                   from_bytes("bool", DType::BOOL, {3}, &boolean),
                                   from_bytes("scalar", DType::F32, {}, &scalar),
                                   from_bytes("empty", DType::F32, {0, 4}, &none)};
  write_safetensors(path, ts, {{"format", "pt"}, {"note", "x"}});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("note"), "x");
  EXPECT_EQ(f.data_offset() % 8, 0u);
  std::map<std::string, const TensorInfo*> got;
  for (const auto& t : f.tensors()) got[t.name] = &t;
  ASSERT_EQ(got.size(), ts.size());
  const std::vector<const std::vector<std::byte>*> src = {&u8,  &f32,     &bf16,   &i64,
                                                          &f16, &boolean, &scalar, &none};
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorInfo& t = *got.at(ts[i].name);
    EXPECT_EQ(t.dtype, ts[i].dtype) << t.name;
    EXPECT_EQ(t.shape, ts[i].shape) << t.name;
    ASSERT_EQ(t.nbytes, src[i]->size()) << t.name;
    if (t.nbytes) {
      EXPECT_EQ(std::memcmp(t.data, src[i]->data(), t.nbytes), 0) << t.name;
    }
    // Larger dtypes first keeps each tensor aligned to its element size.
    EXPECT_EQ(size_t(t.data - f.mapping().data()) % dtype_size(t.dtype), 0u) << t.name;
  }
}

TEST(SafetensorsWriter, StreamsInOrderedChunksOfAtMost64MiB) {
  test::TempDir dir;
  const size_t n = (size_t(64) << 20) + 100;
  std::vector<std::pair<size_t, size_t>> calls;
  TensorToWrite big{"big", DType::U8, {int64_t(n)}, [&](size_t off, std::span<std::byte> out) {
                      calls.emplace_back(off, out.size());
                      for (size_t i = 0; i < out.size(); ++i) out[i] = std::byte((off + i) % 251);
                    }};
  write_safetensors(dir.file("big.safetensors"), {big});
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], std::make_pair(size_t(0), size_t(64) << 20));
  EXPECT_EQ(calls[1], std::make_pair(size_t(64) << 20, size_t(100)));
  SafetensorsFile f(dir.file("big.safetensors"));
  const TensorInfo& t = f.tensors()[0];
  for (size_t i : {size_t(0), size_t(12345), (size_t(64) << 20) - 1, size_t(64) << 20, n - 1})
    EXPECT_EQ(std::to_integer<size_t>(t.data[i]), i % 251) << i;
}

TEST(SafetensorsWriter, FailedFillLeavesNoFile) {
  test::TempDir dir;
  const std::string path = dir.file("x.safetensors");
  TensorToWrite t{
      "t", DType::F32, {4}, [](size_t, std::span<std::byte>) { fail("generator broke"); }};
  EXPECT_THROW(write_safetensors(path, {t}), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafetensorsWriter, RejectsBadTensors) {
  test::TempDir dir;
  auto fill = [](size_t, std::span<std::byte> o) { std::memset(o.data(), 0, o.size()); };
  const std::string path = dir.file("x.safetensors");
  try {
    write_safetensors(path, {{"neg", DType::F32, {2, -1}, fill}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'neg'"), std::string::npos) << e.what();
  }
  try {
    write_safetensors(path, {{"d", DType::F32, {1}, fill}, {"d", DType::U8, {1}, fill}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'d' given twice"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

// A full disk shows up as a located ug::Error; simulated with a file size limit.
TEST(SafetensorsWriter, WriteErrorNamesTheFile) {
  test::TempDir dir;
  const std::string path = dir.file("full.safetensors");
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of a signal
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit lim = old;
  lim.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  std::string msg;
  try {
    write_safetensors(path, {{"t", DType::U8, {4 << 20}, [](size_t, std::span<std::byte> o) {
                                std::memset(o.data(), 1, o.size());
                              }}});
  } catch (const Error& e) {
    msg = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(msg.find(path + ": write failed"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

}  // namespace
}  // namespace ug
