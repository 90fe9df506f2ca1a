#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace ug {
namespace {

using nlohmann::json;
constexpr size_t kChunkBytes = size_t(64) << 20;

// A file written under a temporary name and renamed into place by commit(); removed otherwise.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot create {}: {}", path_, tmp_, std::strerror(errno));
  }
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, std::min(n, size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      // write() returning 0 for a non-empty buffer means no space: report it like ENOSPC.
      if (w <= 0)
        fail("{}: write failed after {} bytes: {}", path_, written_,
             std::strerror(w < 0 ? errno : ENOSPC));
      p += w;
      n -= size_t(w);
      written_ += size_t(w);
    }
  }

  // Flushes to disk (a full disk may only show up here) and renames into place.
  void commit() {
    if (::fsync(fd_) != 0) fail("{}: fsync failed: {}", path_, std::strerror(errno));
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail("{}: close failed: {}", path_, std::strerror(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail("{}: cannot rename {} into place: {}", path_, tmp_, std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

uint64_t checked_nbytes(const TensorToWrite& t, const std::string& path) {
  UG_CHECK(!t.name.empty() && t.name != "__metadata__", "{}: invalid tensor name '{}'", path,
           t.name);
  uint64_t n = dtype_size(t.dtype);
  for (size_t i = 0; i < t.shape.size(); ++i) {
    UG_CHECK(t.shape[i] >= 0, "{}: tensor '{}': shape[{}] is {}, must be >= 0", path, t.name, i,
             t.shape[i]);
    UG_CHECK(!__builtin_mul_overflow(n, uint64_t(t.shape[i]), &n),
             "{}: tensor '{}': shape overflows", path, t.name);
  }
  UG_CHECK(t.fill || n == 0, "{}: tensor '{}' has no fill callback", path, t.name);
  return n;
}

std::string build_header(const std::vector<const TensorToWrite*>& order,
                         const std::vector<uint64_t>& sizes,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& path) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    h[order[i]->name] = {{"dtype", std::string(dtype_name(order[i]->dtype))},
                         {"shape", order[i]->shape},
                         {"data_offsets", {offset, offset + sizes[i]}}};
    offset += sizes[i];
  }
  std::string s;
  try {
    s = h.dump();
  } catch (const json::exception& e) {
    fail("{}: cannot encode the header (tensor names and metadata must be UTF-8): {}", path,
         e.what());
  }
  s.append((8 - (8 + s.size()) % 8) % 8, ' ');  // HF pads so the data starts 8-byte aligned
  return s;
}

void write_file(const std::string& path, std::vector<const TensorToWrite*> order,
                const std::map<std::string, std::string>& metadata) {
  // Larger elements first keeps every tensor aligned to its element size with no gaps.
  std::stable_sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    return dtype_size(a->dtype) > dtype_size(b->dtype);
  });
  std::set<std::string_view> names;
  std::vector<uint64_t> sizes;
  uint64_t largest = 0;
  for (const TensorToWrite* t : order) {
    sizes.push_back(checked_nbytes(*t, path));
    UG_CHECK(names.insert(t->name).second, "{}: tensor '{}' given twice", path, t->name);
    largest = std::max(largest, sizes.back());
  }
  const std::string header = build_header(order, sizes, metadata, path);
  AtomicFile out(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  out.write(len, 8);
  out.write(header.data(), header.size());
  std::vector<std::byte> buf(std::max<uint64_t>(1, std::min<uint64_t>(largest, kChunkBytes)));
  for (size_t i = 0; i < order.size(); ++i) {
    for (uint64_t off = 0; off < sizes[i]; off += buf.size()) {
      std::span<std::byte> chunk(buf.data(),
                                 size_t(std::min<uint64_t>(buf.size(), sizes[i] - off)));
      order[i]->fill(size_t(off), chunk);
      out.write(chunk.data(), chunk.size());
    }
  }
  out.commit();
}

void write_index(const std::string& path, uint64_t total,
                 const std::map<std::string, std::string>& weight_map) {
  json j = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  std::string s = j.dump(2) + "\n";
  AtomicFile out(path);
  out.write(s.data(), s.size());
  out.commit();
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  for (const auto& t : tensors) order.push_back(&t);
  write_file(path, std::move(order), metadata);
}

std::vector<std::string> write_sharded_checkpoint(const std::string& dir,
                                                  const std::vector<TensorToWrite>& tensors,
                                                  size_t max_shard_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  UG_CHECK(!ec, "{}: cannot create folder: {}", dir, ec.message());
  const std::map<std::string, std::string> meta{{"format", "pt"}};
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";

  // Greedy packing in the given order; a tensor larger than the limit gets its own shard.
  std::vector<std::vector<const TensorToWrite*>> shards(1);
  uint64_t total = 0, in_shard = 0;
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    const uint64_t n = checked_nbytes(t, dir);
    UG_CHECK(names.insert(t.name).second, "{}: tensor '{}' given twice", dir, t.name);
    if (!shards.back().empty() && in_shard + n > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&t);
    in_shard += n;
    total += n;
  }
  if (total <= max_shard_bytes) {
    write_file(single, shards[0], meta);  // greedy packing never splits when all fits
    fs::remove(index, ec);
    return {single};
  }
  std::vector<std::string> paths;
  std::map<std::string, std::string> weight_map;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string name =
        fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, shards.size());
    write_file(dir + "/" + name, shards[k], meta);
    for (const TensorToWrite* t : shards[k]) weight_map[t->name] = name;
    paths.push_back(dir + "/" + name);
  }
  write_index(index, total, weight_map);
  fs::remove(single, ec);
  paths.push_back(index);
  return paths;
}

}  // namespace ug
