// Runs tests/server_e2e/e2e.mjs: `unigemma serve` on a tiny random model driven by the official
// OpenAI Node client (installed by scripts/fetch_test_clients.sh, which scripts/test.sh runs
// first).
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace ug {
namespace {

namespace fs = std::filesystem;

TEST(ServerE2E, OpenAIClientAcceptanceSuite) {
  if (test::run_command(test::binary_path() + " serve --help").exit_code != 0)
    GTEST_SKIP() << "unigemma was built without the server (-DUNIGEMMA_SERVER=OFF)";
  const std::string dir = test::data_path("../server_e2e");
  ASSERT_TRUE(fs::exists(dir + "/node_modules/openai/package.json"))
      << "the OpenAI client is missing: run scripts/fetch_test_clients.sh";
  const std::string tok = test::asset_path("tokenizer/tokenizer.json");
  ASSERT_TRUE(fs::exists(tok)) << tok << " missing: run scripts/fetch_tokenizer.sh";
  auto r = test::run_command("node " + dir + "/e2e.mjs --bin " + test::binary_path() +
                             " --tokenizer " + tok + " --media " + test::data_path("media"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("all passed"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ug
