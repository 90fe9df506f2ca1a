// End-to-end tests of the unigemma binary: outputs, exit codes and located errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "io/npy.h"
#include "test_util.h"

namespace ug {
namespace {

namespace fs = std::filesystem;
using test::run_command;

std::string bin() { return test::binary_path(); }
std::string fixture(const std::string& rel) { return test::data_path("tiny_kv_eq/" + rel); }

void expect_error(const test::CommandResult& r, std::initializer_list<std::string> fragments) {
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.out;
  for (const auto& f : fragments) EXPECT_NE(r.out.find(f), std::string::npos) << r.out << "\nlacks: " << f;
}

TEST(CliLogits, MatchesHFFromTheCommandLine) {
  test::TempDir tmp;
  auto r = run_command(bin() + " logits --model " + fixture("model-f32") + " --tokens " +
                       fixture("text_long/input_ids.npy") + " --out " + tmp.file("l.npy") + " --chunk 50");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto got = npy_as_f32(read_npy(tmp.file("l.npy")));
  auto ref = npy_as_f32(read_npy(fixture("text_long/logits_f32.npy")));
  ASSERT_EQ(got.size(), ref.size());
  float m = 0;
  for (size_t i = 0; i < got.size(); ++i) m = std::max(m, std::fabs(got[i] - ref[i]));
  EXPECT_LE(m, 1e-3f);
}

// bench --ttft-image: one synthetic image through decode, preprocessing and the vision embedder, then the prefill
// of the image's soft tokens plus the text; the row names the image's soft-token count (> 0) and the text length.
TEST(CliBench, TtftImageRow) {
  auto r = run_command(bin() + " bench -m " + fixture("model-bf16") +
                       " -p 0 -n 0 --no-bandwidth -r 1 --ttft-image --ttft-text 7");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const size_t at = r.out.find("| ttft image ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::atoi(r.out.c_str() + at + std::string("| ttft image ").size()), 0) << r.out;
  EXPECT_NE(r.out.find(" + 7 text (896x896)"), std::string::npos) << r.out;
  expect_error(run_command(bin() + " bench -m " + fixture("model-bf16") + " -p 0 -n 0 --ttft-image --ttft-text -2"),
               {"--ttft-text"});
  const auto file = run_command(bin() + " bench -m " + fixture("model-bf16") +
                                " -p 0 -n 0 --no-bandwidth -r 1 --ttft-image --ttft-image-file " +
                                test::data_path("media/noise.jpg"));
  ASSERT_EQ(file.exit_code, 0) << file.out;
  EXPECT_NE(file.out.find(" + 50 text (noise.jpg)"), std::string::npos) << file.out;
  expect_error(run_command(bin() + " bench -m " + fixture("model-bf16") +
                           " -p 0 -n 0 --ttft-image --ttft-image-file /nonexistent.png"),
               {"/nonexistent.png"});
}

TEST(CliBench, SampledDecodeRow) {
  auto r = run_command(bin() + " bench -m " + fixture("model-bf16") + " -p 0 -n 6 -b 1,3 --no-bandwidth -r 1 --sample");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("decode: sampled (temperature 1, top-k 64"), std::string::npos) << r.out;
  const size_t at = r.out.find("| tg6 b3 ctx0 ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::atof(r.out.c_str() + r.out.find('|', at + 1) + 1), 0.0) << r.out;
}

TEST(CliLogits, HiddenStatesAndIdList) {
  test::TempDir tmp;
  auto r = run_command(bin() + " logits -m " + fixture("model-bf16") + " -t 2,5,17,900 --dtype f32 -o " +
                       tmp.file("l.npy") + " --hidden-out " + tmp.file("h.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(read_npy(tmp.file("l.npy")).shape, (std::vector<int64_t>{4, 1024}));
  EXPECT_EQ(read_npy(tmp.file("h.npy")).shape, (std::vector<int64_t>{7, 4, 64}));
}

TEST(CliLogits, BadInputsAreLocatedErrors) {
  test::TempDir tmp;
  std::string out = " --out " + tmp.file("x.npy");
  expect_error(run_command(bin() + " logits -m /nonexistent -t 1,2" + out), {"/nonexistent", "not a directory"});
  expect_error(run_command(bin() + " logits -m " + fixture("model-f32") + " -t 1,x,3" + out), {"'x'"});
  expect_error(run_command(bin() + " logits -m " + fixture("model-f32") + " -t 1,5000" + out), {"5000", "vocabulary"});
  expect_error(run_command(bin() + " logits -m " + fixture("model-f32") + " -t 1 --dtype f8" + out), {"f8"});
  expect_error(run_command(bin() + " logits -m " + fixture("model-f32") + " -t 1 --kv-cache-dtype int4" + out),
               {"--kv-cache-dtype", "'int4'", "auto, bf16 or fp8"});
  for (const char* kv : {"fp8", "fp8_e4m3", "bf16"}) {
    SCOPED_TRACE(kv);
    const std::string flag = std::string(" --kv-cache-dtype ") + kv;
    expect_error(run_command(bin() + " logits -m " + fixture("model-f32") + " -t 1" + flag + out),
                 {"--kv-cache-dtype " + std::string(kv), "f32 KV cache", "--device cuda"});
    expect_error(run_command(bin() + " logits -m " + fixture("model-f32") + " -t 1 --device cuda --precision faithful" +
                             flag + out),
                 {"--precision faithful"});
  }

  // A copy of the model with a corrupt config and then a truncated safetensors file.
  fs::path dir = tmp.file("m");
  fs::create_directories(dir);
  fs::copy_file(fixture("model-f32/config.json"), dir / "config.json");
  test::write_file((dir / "model.safetensors").string(), "garbage");
  expect_error(run_command(bin() + " logits -m " + dir.string() + " -t 1" + out), {"model.safetensors"});
  {
    std::ifstream in(fixture("model-f32/model.safetensors"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    test::write_file((dir / "model.safetensors").string(), bytes.substr(0, bytes.size() / 2));
  }
  expect_error(run_command(bin() + " logits -m " + dir.string() + " -t 1" + out), {"model.safetensors"});
  test::write_file((dir / "config.json").string(), "{\"text_config\": {\"hidden_size\": 64,");
  expect_error(run_command(bin() + " logits -m " + dir.string() + " -t 1" + out), {"config.json", "malformed JSON"});
}

// A tiny random checkpoint with the real tokenizer (fetched by scripts/fetch_tokenizer.sh).
class CliRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tok = test::asset_path("tokenizer/tokenizer.json");
    ASSERT_TRUE(fs::exists(tok)) << tok << " missing: run scripts/fetch_tokenizer.sh";
    dir_ = new test::TempDir();
    auto r =
        run_command(bin() + " init-random --preset tiny --seed 3 --out " + dir_->file("tiny") + " --tokenizer " + tok);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string model() { return dir_->file("tiny"); }
  static test::TempDir* dir_;
};
test::TempDir* CliRun::dir_ = nullptr;

TEST_F(CliRun, OnePromptIsDeterministicPerSeed) {
  std::string cmd = bin() + " run -m " + model() + " -p 'Hello there' -n 12 --seed 7 2>/dev/null";
  auto a = run_command(cmd), b = run_command(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 4u);
  auto g = run_command(bin() + " run -m " + model() + " -p 'Hello there' -n 12 --greedy --stats");
  ASSERT_EQ(g.exit_code, 0) << g.out;
  EXPECT_NE(g.out.find("generated 12 tok"), std::string::npos) << g.out;
}

TEST_F(CliRun, BadSamplingOptionsAreRejected) {
  expect_error(run_command(bin() + " run -m " + model() + " -p hi --top-p 1.5"), {"top_p", "1.5"});
  expect_error(run_command(bin() + " run -m " + model() + " -p hi --temperature -1"), {"temperature"});
}

TEST_F(CliRun, CtrlCStopsTheReplyButNotTheChat) {
  test::TempDir tmp;
  // The script drives the interactive chat through a fifo: a reply interrupted by SIGINT, then another
  // turn, interrupted too. It waits for evidence (output growing, "[stopped]") instead of fixed sleeps, so
  // slow builds (ASan) behave the same; every wait gives up after 60 s.
  const std::string out = tmp.file("out");
  std::string script =
      "set -u\n"
      "size() { stat -c %s " +
      out +
      "; }\n"
      "count() { grep -o \"$1\" " +
      out +
      " | wc -l; }\n"
      "wait_until() { for i in $(seq 1 600); do eval \"$1\" && return 0; sleep 0.1; done; echo \"timeout: $1\"; }\n"
      "mkfifo " +
      tmp.file("in") + "\n" + bin() + " run -m " + model() + " -n 1000000 < " + tmp.file("in") + " > " + out +
      " 2>&1 &\n"
      "pid=$!\n"
      "exec 3>" +
      tmp.file("in") +
      "\n"
      "echo 'tell me a long story' >&3\n"
      "wait_until '[ $(count \"Interactive chat\") -ge 1 ]'\n"
      "s=$(size); wait_until '[ $(size) -gt $((s + 40)) ]'\n"
      "kill -INT $pid\n"
      "wait_until '[ $(count \"\\[stopped\\]\") -ge 1 ]'\n"
      "s=$(size); echo 'second turn' >&3\n"
      "wait_until '[ $(size) -gt $((s + 40)) ]'\n"
      "kill -INT $pid\n"
      "wait_until '[ $(count \"\\[stopped\\]\") -ge 2 ]'\n"
      "echo /exit >&3; exec 3>&-\n"
      "( sleep 60; kill -KILL $pid ) >/dev/null 2>&1 & guard=$!\n"
      "wait $pid; echo rc=$?; kill $guard 2>/dev/null; cat " +
      out + "\n";
  test::write_file(tmp.file("drive.sh"), script);
  auto r = run_command("bash " + tmp.file("drive.sh"));
  EXPECT_NE(r.out.find("rc=0"), std::string::npos) << r.out;
  size_t first = r.out.find("[stopped]");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[stopped]", first + 1), std::string::npos) << "second turn did not run: " << r.out;
}

TEST(CliTokenize, EncodesAndDecodes) {
  std::string tok = test::asset_path("tokenizer/tokenizer.json");
  ASSERT_TRUE(fs::exists(tok)) << "run scripts/fetch_tokenizer.sh";
  auto r = run_command(bin() + " tokenize --tokenizer " + tok + " --text 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("[9259,1902]"), std::string::npos) << r.out;
  auto d = run_command(bin() + " tokenize --tokenizer " + tok + " --decode --text '[9259,1902]'");
  EXPECT_NE(d.out.find("Hello world"), std::string::npos) << d.out;
}

TEST(CliInitRandom, UnknownPresetIsAnError) {
  test::TempDir tmp;
  expect_error(run_command(bin() + " init-random --preset gemma-99b --out " + tmp.file("x")),
               {"gemma-99b", "gemma-4-12b"});
}

}  // namespace
}  // namespace ug

namespace ug {
namespace {

// `unigemma template` on the §2.6 conversation (messages + tools in one file) prints the exact prompt.
TEST(CliTemplate, RendersTheReferenceConversation) {
  std::string chat = test::data_path("chat/");
  auto r = test::run_command(test::binary_path() + " template --messages " + chat + "weather_conversation.json" +
                             " --generation-prompt 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(chat + "weather_full.expected.txt", std::ios::binary);
  std::string expected((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(r.out, expected);
  auto bad = test::run_command(test::binary_path() + " template --messages " + chat + "goldens.json");
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("goldens.json"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace ug
