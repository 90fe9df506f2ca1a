#include "io/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"

namespace ug {
namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; a real 677-tensor header is ~100 KB.
constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;
// A valid header nests 3 deep (object > entry > shape); the limit only stops pathological input.
constexpr int kMaxJsonDepth = 16;

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(std::to_integer<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Short printable form of a JSON value for error messages.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::optional<uint64_t> as_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  return std::nullopt;
}

json parse_json(const std::byte* begin, size_t size, const std::string& path) {
  const char* first = reinterpret_cast<const char*>(begin);
  std::set<std::string> seen;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (depth > kMaxJsonDepth)
      fail("{}: header JSON nests deeper than {} levels", path, kMaxJsonDepth);
    if (ev == json::parse_event_t::key && depth == 1) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second) fail("{}: tensor '{}' appears twice in the header", path, key);
    }
    return true;
  };
  try {
    return json::parse(first, first + size, cb);
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", path, e.what());
  }
}

std::map<std::string, std::string> parse_metadata(const json& v, const std::string& path) {
  UG_CHECK(v.is_object(), "{}: __metadata__ must be an object of strings, got {}", path, brief(v));
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.items()) {
    UG_CHECK(val.is_string(), "{}: __metadata__ '{}' must be a string, got {}", path, k,
             brief(val));
    out.emplace(k, val.get<std::string>());
  }
  return out;
}

std::vector<int64_t> parse_shape(const json& entry, const std::string& where) {
  auto it = entry.find("shape");
  UG_CHECK(it != entry.end() && it->is_array(), "{}: 'shape' missing or not an array", where);
  std::vector<int64_t> shape;
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = as_u64((*it)[i]);
    UG_CHECK(d && *d <= uint64_t(INT64_MAX), "{}: shape[{}] is {}, expected a non-negative integer",
             where, i, brief((*it)[i]));
    shape.push_back(int64_t(*d));
  }
  return shape;
}

// Byte size of shape x dtype, or nullopt on overflow.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, uint64_t(d), &n)) return std::nullopt;
  return n;
}

struct Span {
  uint64_t begin, end;
};

TensorInfo parse_entry(const std::string& name, const json& entry, const std::byte* data,
                       uint64_t data_size, const std::string& path, Span* span) {
  const std::string where = fmt::format("{}: tensor '{}'", path, name);
  UG_CHECK(entry.is_object(), "{}: entry must be an object, got {}", where, brief(entry));
  auto dt = entry.find("dtype");
  UG_CHECK(dt != entry.end() && dt->is_string(), "{}: 'dtype' missing or not a string", where);
  auto dtype = dtype_from_name(dt->get_ref<const std::string&>());
  UG_CHECK(dtype, "{}: unknown dtype '{}' (supported: F32 F64 BF16 F16 I64 I32 I16 I8 U8 BOOL)",
           where, dt->get_ref<const std::string&>());
  TensorInfo t;
  t.name = name;
  t.dtype = *dtype;
  t.shape = parse_shape(entry, where);
  t.file = path;

  auto off = entry.find("data_offsets");
  UG_CHECK(off != entry.end() && off->is_array() && off->size() == 2,
           "{}: 'data_offsets' missing or not a [begin, end] pair", where);
  auto b = as_u64((*off)[0]), e = as_u64((*off)[1]);
  UG_CHECK(b && e, "{}: data_offsets {} must be non-negative integers", where, brief(*off));
  UG_CHECK(*b <= *e, "{}: data_offsets [{}, {}] has begin > end", where, *b, *e);
  UG_CHECK(*e <= data_size, "{}: data_offsets [{}, {}] out of range: the data buffer is {} bytes",
           where, *b, *e, data_size);
  auto need = byte_size(t.shape, t.dtype);
  UG_CHECK(need, "{}: shape [{}] overflows: too many elements", where, fmt::join(t.shape, ", "));
  UG_CHECK(*e - *b == *need,
           "{}: size mismatch: data_offsets [{}, {}] hold {} bytes but shape [{}] x {} needs {}",
           where, *b, *e, *e - *b, fmt::join(t.shape, ", "), dtype_name(t.dtype), *need);
  t.data = data + *b;
  t.nbytes = size_t(*need);
  *span = {*b, *e};
  return t;
}

void check_no_overlap(const std::vector<TensorInfo>& tensors, const std::vector<Span>& spans,
                      const std::string& path) {
  std::vector<size_t> order;
  for (size_t i = 0; i < spans.size(); ++i)
    if (spans[i].end > spans[i].begin) order.push_back(i);  // empty tensors occupy nothing
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return spans[a].begin < spans[b].begin; });
  for (size_t k = 1; k < order.size(); ++k) {
    const Span &p = spans[order[k - 1]], &c = spans[order[k]];
    UG_CHECK(c.begin >= p.end, "{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", path,
             tensors[order[k - 1]].name, p.begin, p.end, tensors[order[k]].name, c.begin, c.end);
  }
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors(const std::byte* file_data, size_t file_size,
                                    const std::string& path) {
  UG_CHECK(file_size > 0, "{}: empty file (not a safetensors file)", path);
  UG_CHECK(file_size >= 8, "{}: file is only {} bytes, too short for the 8-byte header length",
           path, file_size);
  const uint64_t n = read_u64_le(file_data);
  UG_CHECK(n <= file_size - 8,
           "{}: header length {} exceeds the file size ({} bytes); not a safetensors file or "
           "truncated",
           path, n, file_size);
  UG_CHECK(n <= kMaxHeaderBytes, "{}: header length {} is above the {} byte limit", path, n,
           kMaxHeaderBytes);
  UG_CHECK(n >= 2, "{}: header length {} is too small for a JSON object", path, n);

  json j = parse_json(file_data + 8, size_t(n), path);
  UG_CHECK(j.is_object(), "{}: header JSON is not an object (got {})", path, j.type_name());

  SafetensorsHeader h;
  h.data_offset = size_t(8 + n);
  const std::byte* data = file_data + h.data_offset;
  const uint64_t data_size = file_size - h.data_offset;
  std::vector<Span> spans;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      h.metadata = parse_metadata(entry, path);
      continue;
    }
    spans.emplace_back();
    h.tensors.push_back(parse_entry(name, entry, data, data_size, path, &spans.back()));
  }
  check_no_overlap(h.tensors, spans, path);
  return h;  // json objects iterate in key order, so tensors are sorted by name
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(path), header_(parse_safetensors(file_.data(), file_.size(), path)) {}

}  // namespace ug
