// unigemma: one binary, subcommands registered by tools/cmd_*.cc.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

#include "command.h"
#include "core/error.h"

namespace ug::cli {
std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}
}  // namespace ug::cli

int main(int argc, char** argv) {
  using namespace ug::cli;
  CLI::App app{"unigemma: run, serve, fine-tune and benchmark Gemma 4 12B Unified"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "unigemma 0.1.0");
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> subs;
  for (auto& spec : registry) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.help);
    subs.emplace_back(sub, spec.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : subs)
      if (sub->parsed()) return run();
  } catch (const ug::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 2;
  }
  return 0;
}
