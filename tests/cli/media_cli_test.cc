// The media commands end to end through the binary: preprocess (vs HF's processor outputs), logits with media
// (vs HF's logits), run with media, the chat's /image command, and located errors for bad media.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/npy.h"
#include "test_util.h"

namespace ug {
namespace {

using test::run_command;

std::string bin() { return test::binary_path(); }
std::string media(const std::string& name) { return test::data_path("media/" + name); }

void expect_error(const test::CommandResult& r, std::initializer_list<std::string> fragments) {
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.out;
  for (const auto& f : fragments) EXPECT_NE(r.out.find(f), std::string::npos) << r.out << "\nlacks: " << f;
}

TEST(CliPreprocess, ImageEqualsHFProcessor) {
  test::TempDir tmp;
  auto r = run_command(bin() + " preprocess --image " + media("gradient.png") + " --image-tokens 70 --out " +
                       tmp.file("p.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("60 soft tokens"), std::string::npos) << r.out;
  auto got = read_npy(tmp.file("p.npy"));
  auto ref = read_npy(test::data_path("preprocess/gradient.png.70.patches_u8.npy"));
  EXPECT_EQ(got.shape, ref.shape);
  EXPECT_TRUE(got.bytes == ref.bytes);
  EXPECT_EQ(npy_as_i64(read_npy(tmp.file("p.positions.npy"))),
            npy_as_i64(read_npy(test::data_path("preprocess/gradient.png.70.positions.npy"))));
}

TEST(CliPreprocess, AudioEqualsHFFrames) {
  test::TempDir tmp;
  auto r = run_command(bin() + " preprocess --audio " + media("tone_16k_f32.wav") + " --out " + tmp.file("a.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(npy_as_f32(read_npy(tmp.file("a.npy"))), npy_as_f32(read_npy(test::data_path("preprocess/tone_16k.frames.npy"))));
}

TEST(CliPreprocess, VideoFramesAndIndices) {
  test::TempDir tmp;
  auto r = run_command(bin() + " preprocess --video " + media("video_ffv1.mkv") + " --out " + tmp.file("v.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(read_npy(tmp.file("v.npy")).shape, (std::vector<int64_t>{32, 63, 6912}));
  EXPECT_NE(r.out.find("38@4.75s"), std::string::npos) << r.out;
}

TEST(CliLogits, ImageAudioFromFilesMatchHF) {
  test::TempDir tmp;
  const std::string dir = test::data_path("tiny_kv_eq/");
  auto r = run_command(bin() + " logits --model " + dir + "model-f32 --tokens " + dir + "image_audio/input_ids.npy" +
                       " --image " + media("gradient.png") + " --audio " + media("tone_16k_f32.wav") + " --image " +
                       media("noise.jpg") + " --image-tokens 70 --out " + tmp.file("l.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto got = npy_as_f32(read_npy(tmp.file("l.npy")));
  auto ref = npy_as_f32(read_npy(dir + "image_audio/logits_f32.npy"));
  ASSERT_EQ(got.size(), ref.size());
  float m = 0;
  for (size_t i = 0; i < got.size(); ++i) m = std::max(m, std::fabs(got[i] - ref[i]));
  EXPECT_LE(m, 1e-3f);
}

TEST(CliMedia, BadMediaAreLocatedErrors) {
  test::TempDir tmp;
  test::write_file(tmp.file("broken.png"), std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  test::write_file(tmp.file("notes.txt"), "just text");
  expect_error(run_command(bin() + " preprocess --image " + tmp.file("broken.png") + " --out " + tmp.file("x.npy")),
               {"broken.png"});
  expect_error(run_command(bin() + " preprocess --image " + tmp.file("notes.txt") + " --out " + tmp.file("x.npy")),
               {"notes.txt"});
  expect_error(run_command(bin() + " preprocess --audio " + tmp.file("notes.txt") + " --out " + tmp.file("x.npy")),
               {"notes.txt"});
  expect_error(run_command(bin() + " preprocess --video " + media("tone_16k_i16.wav") + " --out " + tmp.file("x.npy")),
               {"tone_16k_i16.wav", "video"});
  expect_error(run_command(bin() + " preprocess --image " + media("large.png") + " --max-image-pixels 1000 --out " +
                           tmp.file("x.npy")),
               {"large.png", "1000"});
  expect_error(run_command(bin() + " preprocess --out " + tmp.file("x.npy")), {"exactly one of"});
}

// A tiny random checkpoint with the real tokenizer: run with media, and the chat's /image command.
class CliRunMedia : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    std::string tok = test::asset_path("tokenizer/tokenizer.json");
    ASSERT_TRUE(std::filesystem::exists(tok)) << tok << " missing: run scripts/fetch_tokenizer.sh";
    auto r = run_command(bin() + " init-random --preset tiny --seed 3 --out " + dir_->file("tiny") + " --tokenizer " + tok);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string model() { return dir_->file("tiny"); }
  static test::TempDir* dir_;
};
test::TempDir* CliRunMedia::dir_ = nullptr;

TEST_F(CliRunMedia, PromptWithImageAndAudio) {
  auto r = run_command(bin() + " run -m " + model() + " --image " + media("gradient.png") + " --audio " +
                       media("tone_16k_i16.wav") + " --image-tokens 70 -p Describe. -n 3 --greedy --stats 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // bos + template + (1 + 60 + 1) image + (1 + 33 + 1) audio + text: well over 96 prompt tokens.
  auto at = r.out.find("[prompt ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::stoi(r.out.substr(at + 8)), 96) << r.out;
}

TEST_F(CliRunMedia, ChatAttachesMediaAndSurvivesABadFile) {
  test::TempDir tmp;
  test::write_file(tmp.file("in.txt"), "/image " + tmp.file("missing.png") + "\nhello\n/image " +
                                           media("gradient.png") + "\nwhat is this?\n/exit\n");
  auto r = run_command(bin() + " run -m " + model() + " -n 2 --greedy --image-tokens 70 < " + tmp.file("in.txt"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("missing.png"), std::string::npos) << r.out;  // the error, then the chat goes on
  EXPECT_NE(r.out.find("[image attached to the next message: " + media("gradient.png")), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ug
