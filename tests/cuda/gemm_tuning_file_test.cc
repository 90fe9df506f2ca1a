// The kept cuBLASLt choices (gemm_tuning_file.h): plain file handling, no GPU needed (these run in CI too).
#include "backend/cuda/gemm_tuning_file.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace ug::cuda {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const GemmAlgoData kAlgoA{1, 2, 3, 4, 5, 6, 7, 0xfedcba9876543210ull};
const GemmAlgoData kAlgoB{9, 9, 9, 9, 9, 9, 9, 9};

TEST(GemmTuningFile, KeepsChoicesPerDeviceTagAcrossInstances) {
  test::TempDir dir;
  const std::string path = dir.file("sub/dir/gemm-tuning.tsv");  // the directories are created
  const GemmTuningKey key{.m_class = 2048, .n = 30720, .k = 3840, .slices = 1};
  {
    GemmTuningFile f(path, "H200 sm_90 cublasLt 130000");
    EXPECT_TRUE(f.writable());
    EXPECT_TRUE(f.warnings().empty());
    EXPECT_EQ(f.find(key), nullptr);
    EXPECT_TRUE(f.record(key, kAlgoA));
    ASSERT_NE(f.find(key), nullptr);
    EXPECT_EQ(*f.find(key), kAlgoA);
  }
  {
    GemmTuningFile other(path, "H100 sm_90 cublasLt 130000");  // another GPU: none of the H200's choices
    EXPECT_EQ(other.find(key), nullptr);
    EXPECT_TRUE(other.record(key, kAlgoB));
  }
  GemmTuningFile again(path, "H200 sm_90 cublasLt 130000");
  ASSERT_NE(again.find(key), nullptr);
  EXPECT_EQ(*again.find(key), kAlgoA);
  EXPECT_EQ(read_all(path), GemmTuningFile::line("H200 sm_90 cublasLt 130000", key, kAlgoA) + "\n" +
                                GemmTuningFile::line("H100 sm_90 cublasLt 130000", key, kAlgoB) + "\n");
}

TEST(GemmTuningFile, TheLaterOfTwoLinesWins) {
  test::TempDir dir;
  const std::string path = dir.file("t.tsv");
  const GemmTuningKey key{.m_class = 1024, .n = 8192, .k = 3840, .slices = 2};
  test::write_file(path,
                   GemmTuningFile::line("gpu", key, kAlgoA) + "\n" + GemmTuningFile::line("gpu", key, kAlgoB) + "\n");
  GemmTuningFile f(path, "gpu");
  ASSERT_NE(f.find(key), nullptr);
  EXPECT_EQ(*f.find(key), kAlgoB);
}

TEST(GemmTuningFile, MalformedLinesAreSkippedWithTheirFileAndLine) {
  test::TempDir dir;
  const std::string path = dir.file("t.tsv");
  const GemmTuningKey good{.m_class = 512, .n = 64, .k = 128, .slices = 1};
  std::string bad_word = GemmTuningFile::line("gpu", {.m_class = 1024, .n = 64, .k = 128, .slices = 1}, kAlgoA);
  bad_word.back() = 'g';  // not a hex digit
  test::write_file(path, "not a tuning line\n" + bad_word + "\n" +
                             "gpu\t-5\t64\t128\t1\t0\t0\t0\t0\t0\t0\t0\t0\n" +  // negative m class, short words
                             GemmTuningFile::line("gpu", good, kAlgoA) + "\n");
  GemmTuningFile f(path, "gpu");
  ASSERT_EQ(f.warnings().size(), 3u);
  EXPECT_NE(f.warnings()[0].find(path + ":1: expected 13 tab-separated fields, got 1"), std::string::npos)
      << f.warnings()[0];
  EXPECT_NE(f.warnings()[1].find(path + ":2: the algorithm must be 8 words of 16 hex digits"), std::string::npos)
      << f.warnings()[1];
  EXPECT_NE(f.warnings()[2].find(path + ":3: m class, n, k and k slices must be integers >= 1"), std::string::npos)
      << f.warnings()[2];
  ASSERT_NE(f.find(good), nullptr);
  EXPECT_EQ(*f.find(good), kAlgoA);
}

TEST(GemmTuningFile, AnUnwritablePathIsReportedNotThrown) {
  test::TempDir dir;
  test::write_file(dir.file("plain"), "a file, not a directory\n");
  GemmTuningFile f(dir.file("plain/gemm-tuning.tsv"), "gpu");
  EXPECT_FALSE(f.writable());
  EXPECT_FALSE(f.record({.m_class = 512, .n = 1, .k = 8, .slices = 1}, kAlgoA));
}

TEST(GemmTuningFile, RowClassesRoundUpToWholeSteps) {
  EXPECT_EQ(GemmTuningFile::m_class(1), 512);
  EXPECT_EQ(GemmTuningFile::m_class(512), 512);
  EXPECT_EQ(GemmTuningFile::m_class(1025), 1536);
  EXPECT_EQ(GemmTuningFile::m_class(2048), 2048);
}

TEST(GemmTuningFile, PathFromTheEnvironment) {
  const char* old_tuning = std::getenv("UNIGEMMA_GEMM_TUNING");
  const char* old_xdg = std::getenv("XDG_CACHE_HOME");
  const std::string saved_tuning = old_tuning ? old_tuning : "", saved_xdg = old_xdg ? old_xdg : "";
  setenv("UNIGEMMA_GEMM_TUNING", "off", 1);
  EXPECT_EQ(gemm_tuning_path_from_env(), "");
  setenv("UNIGEMMA_GEMM_TUNING", "0", 1);
  EXPECT_EQ(gemm_tuning_path_from_env(), "");
  setenv("UNIGEMMA_GEMM_TUNING", "/some/where.tsv", 1);
  EXPECT_EQ(gemm_tuning_path_from_env(), "/some/where.tsv");
  unsetenv("UNIGEMMA_GEMM_TUNING");
  setenv("XDG_CACHE_HOME", "/cache", 1);
  EXPECT_EQ(gemm_tuning_path_from_env(), "/cache/unigemma/gemm-tuning.tsv");
  old_tuning ? setenv("UNIGEMMA_GEMM_TUNING", saved_tuning.c_str(), 1) : unsetenv("UNIGEMMA_GEMM_TUNING");
  old_xdg ? setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1) : unsetenv("XDG_CACHE_HOME");
}

}  // namespace
}  // namespace ug::cuda
