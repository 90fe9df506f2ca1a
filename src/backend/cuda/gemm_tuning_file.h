// cuBLASLt algorithm choices kept across runs. For prefill-sized products the Gemm times the heuristic's first
// candidates once per GPU and shape class and keeps the fastest here, so that every later start runs the same
// algorithm (the same bits) without timing again; a choice that could not be kept would make one start's numbers
// differ from the next's, so without a writable file the Gemm does not tune at all.
//
// Plain text, one choice per line, tab-separated:
//   <device tag> <m class> <n> <k> <k slices> <algorithm: 8 x 16 hex digits>
// The device tag names the GPU and the cuBLASLt version (an algorithm is only valid for both); lines of other tags
// are left alone. A malformed line is skipped with a warning naming the file and line (a cache must not stop a run);
// of two lines with one key the later wins.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace ug::cuda {

struct GemmTuningKey {
  int64_t m_class = 0;  // the product's rows rounded up (GemmTuningFile::m_class)
  int64_t n = 0, k = 0, slices = 1;
  auto operator<=>(const GemmTuningKey&) const = default;
};

using GemmAlgoData = std::array<uint64_t, 8>;  // cublasLtMatmulAlgo_t's opaque words

class GemmTuningFile {
 public:
  // Reads the choices of device_tag from path (a missing file holds none) and checks that the file can be
  // appended to (its directory is created when missing).
  GemmTuningFile(std::string path, std::string device_tag);

  // The rows a choice is kept for: m rounded up to a multiple of kMClassRows, so that a server's varying step sizes
  // share a few choices instead of each being timed.
  static constexpr int64_t kMClassRows = 512;
  static int64_t m_class(int64_t m) { return (m + kMClassRows - 1) / kMClassRows * kMClassRows; }

  const GemmAlgoData* find(const GemmTuningKey& key) const;
  // Keeps a choice (appends a line). False when the line could not be written.
  bool record(const GemmTuningKey& key, const GemmAlgoData& algo);

  bool writable() const { return writable_; }
  const std::string& path() const { return path_; }
  // What reading found wrong (file:line: why), for the caller to report.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // One line of the file for these values (tests and record use it).
  static std::string line(const std::string& device_tag, const GemmTuningKey& key, const GemmAlgoData& algo);

 private:
  void read();

  std::string path_, tag_;
  bool writable_ = false;
  std::map<GemmTuningKey, GemmAlgoData> choices_;
  std::vector<std::string> warnings_;
};

// Where the choices live unless UNIGEMMA_GEMM_TUNING says otherwise: $XDG_CACHE_HOME/unigemma/gemm-tuning.tsv, else
// $HOME/.cache/unigemma/gemm-tuning.tsv; empty when neither variable is set.
std::string default_gemm_tuning_path();

// UNIGEMMA_GEMM_TUNING: unset or empty: default_gemm_tuning_path(); "0" or "off": no tuning (empty); else a path.
std::string gemm_tuning_path_from_env();

}  // namespace ug::cuda
