#include "io/checkpoint.h"

#include <fmt/ranges.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace ug {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

std::vector<std::string> list_safetensors(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// name -> shard file, from the "weight_map" of an index.json.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(index_path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", index_path, e.what());
  }
  UG_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
           "{}: expected an object with a 'weight_map' object", index_path);
  std::map<std::string, std::string> map;
  for (const auto& [name, file] : j["weight_map"].items()) {
    UG_CHECK(file.is_string(), "{}: weight_map['{}'] must be a file name string", index_path, name);
    const auto& f = file.get_ref<const std::string&>();
    UG_CHECK(!f.empty() && fs::path(f).is_relative() && f.find("..") == std::string::npos,
             "{}: weight_map['{}'] = '{}' is not a file name inside the folder", index_path, name,
             f);
    map.emplace(name, f);
  }
  UG_CHECK(!map.empty(), "{}: weight_map is empty", index_path);
  return map;
}

}  // namespace

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  const fs::path d(dir);
  if (fs::is_regular_file(d, ec)) {
    load_single(dir);
  } else if (!fs::is_directory(d, ec)) {
    fail("{}: checkpoint folder does not exist", dir);
  } else if (fs::exists(d / kSingleName, ec)) {  // like transformers: a single file wins
    load_single((d / kSingleName).string());
  } else if (fs::exists(d / kIndexName, ec)) {
    load_index((d / kIndexName).string());
  } else {
    auto found = list_safetensors(dir);
    UG_CHECK(!found.empty(), "{}: no {}, {} or other *.safetensors file in the folder", dir,
             kSingleName, kIndexName);
    UG_CHECK(found.size() == 1, "{}: {} *.safetensors files ({}) but no {} saying how they fit",
             dir, found.size(), fmt::join(found, ", "), kIndexName);
    load_single((d / found[0]).string());
  }
}

void Checkpoint::load_single(const std::string& path) {
  add_file(path);
  UG_CHECK(!by_name_.empty(), "{}: the file holds no tensors", path);
}

void Checkpoint::add_file(const std::string& path) {
  files_.push_back(std::make_unique<SafetensorsFile>(path));
  for (const TensorInfo& t : files_.back()->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, &t);
    UG_CHECK(inserted, "{}: tensor '{}' is defined in both {} and {}", dir_, t.name,
             it->second->file, t.file);
    total_bytes_ += t.nbytes;
  }
}

void Checkpoint::load_index(const std::string& index_path) {
  auto weight_map = read_weight_map(index_path);
  std::vector<std::string> shards;
  for (const auto& [name, file] : weight_map) shards.push_back(file);
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  for (const auto& shard : shards) {
    const std::string path = (fs::path(dir_) / shard).string();
    std::error_code ec;
    UG_CHECK(fs::is_regular_file(path, ec), "{}: shard '{}' named in the weight_map is missing",
             index_path, shard);
    add_file(path);
  }
  for (const auto& [name, shard] : weight_map) {
    const TensorInfo* t = find(name);
    UG_CHECK(t, "{}: tensor '{}' is mapped to shard '{}' but that shard does not contain it",
             index_path, name, shard);
    UG_CHECK(fs::path(t->file).filename() == fs::path(shard).filename(),
             "{}: tensor '{}' is mapped to shard '{}' but found in '{}'", index_path, name, shard,
             t->file);
  }
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorInfo& Checkpoint::get(std::string_view name) const {
  if (const TensorInfo* t = find(name)) return *t;
  // Neighbours in sorted order share the longest prefix: a cheap "did you mean".
  std::vector<std::string> near;
  auto it = by_name_.lower_bound(name);
  if (it != by_name_.begin()) near.push_back(std::prev(it)->first);
  for (int k = 0; k < 2 && it != by_name_.end(); ++k, ++it) near.push_back(it->first);
  fail("{}: tensor '{}' not found; the checkpoint has {} tensors (nearest names: {})", dir_, name,
       by_name_.size(), fmt::join(near, ", "));
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, t] : by_name_) out.push_back(name);
  return out;
}

void Checkpoint::prefetch() const {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  for (const auto& f : files_) {
    const MappedFile& m = f->mapping();
    const size_t begin = f->data_offset() / page * page;
    if (m.size() <= begin) continue;
    // Advisory only: a failure just means no read-ahead.
    ::madvise(const_cast<std::byte*>(m.data()) + begin, m.size() - begin, MADV_WILLNEED);
  }
}

}  // namespace ug
