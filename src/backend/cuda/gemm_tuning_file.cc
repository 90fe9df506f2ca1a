#include "backend/cuda/gemm_tuning_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ug::cuda {
namespace {

// The whole of s as an integer in `base` (nothing left over), else false.
template <typename T>
bool parse_whole(const std::string& s, int base, T& out) {
  if (s.empty()) return false;
  size_t used = 0;
  try {
    if constexpr (std::is_signed_v<T>)
      out = std::stoll(s, &used, base);
    else
      out = std::stoull(s, &used, base);
  } catch (...) {
    return false;
  }
  return used == s.size();
}

bool parse_int(const std::string& s, int64_t& out) { return parse_whole(s, 10, out); }

bool parse_word(const std::string& s, uint64_t& out) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(uint8_t(c)) != 0; }) &&
         parse_whole(s, 16, out);
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) fields.push_back(field);
  return fields;
}

}  // namespace

GemmTuningFile::GemmTuningFile(std::string path, std::string device_tag)
    : path_(std::move(path)), tag_(std::move(device_tag)) {
  read();
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  writable_ = std::ofstream(path_, std::ios::app).good();
}

void GemmTuningFile::read() {
  std::ifstream in(path_);
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (text.empty()) continue;
    const std::vector<std::string> f = split_tabs(text);
    const auto bad = [&](std::string_view why) {
      warnings_.push_back(fmt::format("{}:{}: {} (line skipped)", path_, number, why));
    };
    if (f.size() != 13) {
      bad(fmt::format("expected 13 tab-separated fields, got {}", f.size()));
      continue;
    }
    if (f[0] != tag_) continue;  // another GPU or cuBLASLt version
    GemmTuningKey key;
    if (!parse_int(f[1], key.m_class) || !parse_int(f[2], key.n) || !parse_int(f[3], key.k) ||
        !parse_int(f[4], key.slices) || key.m_class < 1 || key.n < 1 || key.k < 1 || key.slices < 1) {
      bad("m class, n, k and k slices must be integers >= 1");
      continue;
    }
    GemmAlgoData algo{};
    bool ok = true;
    for (size_t i = 0; i < algo.size() && ok; ++i) ok = parse_word(f[5 + i], algo[i]);
    if (!ok) {
      bad("the algorithm must be 8 words of 16 hex digits");
      continue;
    }
    choices_[key] = algo;
  }
}

const GemmAlgoData* GemmTuningFile::find(const GemmTuningKey& key) const {
  const auto it = choices_.find(key);
  return it == choices_.end() ? nullptr : &it->second;
}

bool GemmTuningFile::record(const GemmTuningKey& key, const GemmAlgoData& algo) {
  choices_[key] = algo;
  if (!writable_) return false;
  std::ofstream out(path_, std::ios::app);
  out << line(tag_, key, algo) << '\n';
  out.flush();
  return out.good();
}

std::string GemmTuningFile::line(const std::string& device_tag, const GemmTuningKey& key, const GemmAlgoData& algo) {
  std::string s = fmt::format("{}\t{}\t{}\t{}\t{}", device_tag, key.m_class, key.n, key.k, key.slices);
  for (uint64_t w : algo) s += fmt::format("\t{:016x}", w);
  return s;
}

std::string default_gemm_tuning_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return (std::filesystem::path(xdg) / "unigemma" / "gemm-tuning.tsv").string();
  const char* home = std::getenv("HOME");
  if (home && *home) return (std::filesystem::path(home) / ".cache" / "unigemma" / "gemm-tuning.tsv").string();
  return "";
}

std::string gemm_tuning_path_from_env() {
  const char* v = std::getenv("UNIGEMMA_GEMM_TUNING");
  if (!v || !*v) return default_gemm_tuning_path();
  const std::string_view s(v);
  if (s == "0" || s == "off") return "";
  return std::string(s);
}

}  // namespace ug::cuda
