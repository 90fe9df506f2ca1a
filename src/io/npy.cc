#include "io/npy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/bf16.h"
#include "core/error.h"
#include "core/mapped_file.h"

namespace ug {
namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes

struct NpyHeader {
  std::string descr;
  std::optional<bool> fortran;
  std::optional<std::vector<int64_t>> shape;
};

// Parses the Python dict literal numpy writes: {'descr': '<f4', 'fortran_order': False, 'shape':
// (2, 3), }
class DictParser {
 public:
  DictParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false;
    expect('{');
    while (!peek('}')) {
      const std::string key = string();
      expect(':');
      if (key == "descr") {
        h.descr = string();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran = boolean();
      } else if (key == "shape") {
        h.shape = tuple();
      } else {
        fail("{}: npy header has unexpected key '{}'", path_, key);
      }
      if (!peek('}')) expect(',');
    }
    expect('}');
    UG_CHECK(has_descr && h.fortran && h.shape,
             "{}: npy header lacks one of 'descr', 'fortran_order', 'shape'", path_);
    return h;
  }

 private:
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool peek(char c) {
    skip_ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  [[noreturn]] void bad(std::string_view what) {
    fail("{}: malformed npy header at byte {}: expected {} in \"{}\"", path_, i_, what, s_);
  }
  void expect(char c) {
    if (!peek(c)) bad(fmt::format("'{}'", c));
    ++i_;
  }
  std::string string() {
    skip_ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) bad("a quoted string");
    const char q = s_[i_++];
    size_t end = s_.find(q, i_);
    if (end == std::string_view::npos) bad("a closing quote");
    std::string out(s_.substr(i_, end - i_));
    i_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    for (auto [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (s_.substr(i_, std::strlen(word)) == word) {
        i_ += std::strlen(word);
        return value;
      }
    }
    bad("True or False");
  }
  int64_t integer() {
    skip_ws();
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') bad("a non-negative integer");
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (INT64_MAX - 9) / 10) bad("an integer that fits in 64 bits");
      v = v * 10 + (s_[i_++] - '0');
    }
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long suffix
    return v;
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> out;
    expect('(');
    while (!peek(')')) {
      out.push_back(integer());
      if (!peek(')')) expect(',');
    }
    expect(')');
    return out;
  }

  std::string_view s_;
  const std::string& path_;
  size_t i_ = 0;
};

DType dtype_from_descr(const std::string& d, const std::string& path) {
  UG_CHECK(d.size() >= 3, "{}: unsupported npy dtype '{}'", path, d);
  const char order = d[0];
  const std::string code = d.substr(1);
  UG_CHECK(order != '>', "{}: big-endian npy dtype '{}' is not supported", path, d);
  UG_CHECK(order == '<' || order == '|' || order == '=', "{}: unsupported npy dtype '{}'", path, d);
  static const std::pair<const char*, DType> kCodes[] = {
      {"f4", DType::F32},  {"f8", DType::F64}, {"f2", DType::F16}, {"i8", DType::I64},
      {"i4", DType::I32},  {"i2", DType::I16}, {"i1", DType::I8},  {"u1", DType::U8},
      {"b1", DType::BOOL}, {"u2", DType::BF16}};
  for (const auto& [c, t] : kCodes)
    if (code == c) return t;
  fail("{}: unsupported npy dtype '{}' (supported: f4 f8 f2 i8 i4 i2 i1 u1 b1, u2 as raw bf16)",
       path, d);
}

template <typename Out, typename In>
void convert(const NpyArray& a, std::vector<Out>& out) {
  const In* p = reinterpret_cast<const In*>(a.bytes.data());
  for (size_t i = 0; i < out.size(); ++i) {
    In v;
    std::memcpy(&v, p + i, sizeof(In));  // bytes of a std::vector<std::byte> need not be aligned
    out[i] = Out(v);
  }
}

std::string shape_literal(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

void write_npy_raw(const std::string& path, const void* data, const char* descr, size_t elem,
                   const std::vector<int64_t>& shape) {
  uint64_t n = elem;
  for (int64_t d : shape)
    UG_CHECK(d >= 0 && !__builtin_mul_overflow(n, uint64_t(d), &n), "{}: invalid shape [{}]", path,
             fmt::join(shape, ", "));
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr,
                                 shape_literal(shape));
  const bool v2 = dict.size() + 11 > 65535;  // v1 stores the header length in 16 bits
  const size_t prefix = v2 ? 12 : 10;
  dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');  // numpy aligns data to 64
  dict += '\n';
  std::string head(kMagic, 6);
  head += char(v2 ? 2 : 1);
  head += char(0);
  for (size_t i = 0; i < prefix - 8; ++i) head += char((dict.size() >> (8 * i)) & 0xff);
  head += dict;

  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("{}: cannot create: {}", path, std::strerror(errno));
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size() &&
            (n == 0 || std::fwrite(data, 1, n, f) == n);
  int e = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) fail("{}: write failed: {}", path, std::strerror(e ? e : errno));
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

NpyArray parse_npy(const std::byte* data, size_t size, const std::string& path) {
  UG_CHECK(size >= 10, "{}: not an npy file: only {} bytes", path, size);
  UG_CHECK(std::memcmp(data, kMagic, 6) == 0, "{}: not an npy file (bad magic)", path);
  const int major = std::to_integer<int>(data[6]);
  UG_CHECK(major >= 1 && major <= 3, "{}: unsupported npy format version {}", path, major);
  const size_t len_bytes = major == 1 ? 2 : 4;
  UG_CHECK(size >= 8 + len_bytes, "{}: truncated npy header", path);
  size_t hlen = 0;
  for (size_t i = 0; i < len_bytes; ++i) hlen |= std::to_integer<size_t>(data[8 + i]) << (8 * i);
  const size_t data_start = 8 + len_bytes + hlen;
  UG_CHECK(data_start <= size, "{}: truncated npy header: needs {} bytes, file has {}", path,
           data_start, size);
  std::string_view text(reinterpret_cast<const char*>(data) + 8 + len_bytes, hlen);
  NpyHeader h = DictParser(text, path).parse();

  NpyArray a;
  a.dtype = dtype_from_descr(h.descr, path);
  a.shape = *h.shape;
  uint64_t nbytes = dtype_size(a.dtype);
  for (int64_t d : a.shape)
    UG_CHECK(!__builtin_mul_overflow(nbytes, uint64_t(d), &nbytes), "{}: npy shape ({}) overflows",
             path, fmt::join(a.shape, ", "));
  size_t big_dims = 0;
  for (int64_t d : a.shape) big_dims += d > 1;
  UG_CHECK(!*h.fortran || big_dims <= 1, "{}: fortran-order npy arrays are not supported", path);
  const uint64_t have = size - data_start;
  UG_CHECK(have >= nbytes, "{}: truncated npy data: shape ({}) x {} needs {} bytes, file has {}",
           path, fmt::join(a.shape, ", "), h.descr, nbytes, have);
  UG_CHECK(have == nbytes, "{}: npy file has {} bytes after the data of shape ({})", path,
           have - nbytes, fmt::join(a.shape, ", "));
  a.bytes.assign(data + data_start, data + data_start + nbytes);
  return a;
}

NpyArray read_npy(const std::string& path) {
  MappedFile f(path);
  return parse_npy(f.data(), f.size(), path);
}

std::vector<float> npy_as_f32(const NpyArray& a) {
  std::vector<float> out(size_t(a.numel()));
  switch (a.dtype) {
    case DType::F32:
      convert<float, float>(a, out);
      break;
    case DType::F64:
      convert<float, double>(a, out);
      break;
    case DType::I64:
      convert<float, int64_t>(a, out);
      break;
    case DType::I32:
      convert<float, int32_t>(a, out);
      break;
    case DType::I16:
      convert<float, int16_t>(a, out);
      break;
    case DType::I8:
      convert<float, int8_t>(a, out);
      break;
    case DType::U8:
    case DType::BOOL:
      convert<float, uint8_t>(a, out);
      break;
    case DType::F16:
    case DType::BF16: {
      std::vector<uint16_t> raw(out.size());
      convert<uint16_t, uint16_t>(a, raw);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = a.dtype == DType::F16 ? f16_to_f32(raw[i]) : bf16_to_f32(raw[i]);
      break;
    }
    default:
      fail("npy array of dtype {} cannot be read as float", dtype_name(a.dtype));
  }
  return out;
}

std::vector<int64_t> npy_as_i64(const NpyArray& a) {
  std::vector<int64_t> out(size_t(a.numel()));
  switch (a.dtype) {
    case DType::I64:
      convert<int64_t, int64_t>(a, out);
      break;
    case DType::I32:
      convert<int64_t, int32_t>(a, out);
      break;
    case DType::I16:
      convert<int64_t, int16_t>(a, out);
      break;
    case DType::I8:
      convert<int64_t, int8_t>(a, out);
      break;
    case DType::U8:
    case DType::BOOL:
      convert<int64_t, uint8_t>(a, out);
      break;
    default:
      fail("npy array of dtype {} is not an integer array", dtype_name(a.dtype));
  }
  return out;
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_npy_raw(path, data, "<f4", 4, shape);
}
void write_npy(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape) {
  write_npy_raw(path, data, "<i8", 8, shape);
}
void write_npy(const std::string& path, const uint8_t* data, const std::vector<int64_t>& shape) {
  write_npy_raw(path, data, "|u1", 1, shape);
}

}  // namespace ug
