// unigemma template: renders a conversation with the native Gemma 4 chat template and prints the
// exact prompt text (no trailing newline), e.g. to diff against transformers' apply_chat_template.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/chat_template.h"

namespace ug::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

// The checkpoint's template text, from chat_template.jinja or tokenizer_config.json; "" if none.
std::string checkpoint_template(const std::string& dir) {
  UG_CHECK(fs::is_directory(dir), "--model {}: not a directory", dir);
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) return read_text_file(jinja.string());
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(config)) return "";
  const json cfg = read_json(config.string());
  auto it = cfg.find("chat_template");
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array())  // HF also allows [{name, template}]: the "default" one is used
    for (const json& t : *it)
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
        return t["template"].get<std::string>();
  return "";
}

json tools_from(const json& doc, const std::string& path) {
  if (doc.is_array()) return doc;
  UG_CHECK(doc.is_object() && doc.contains("tools"), "{}: expected a JSON array of tools or an object with \"tools\"",
           path);
  return doc["tools"];
}

struct TemplateArgs {
  std::string model, messages, tools;
  bool generation_prompt = false, think = false;
};

int run_template(const TemplateArgs& a) {
  if (!a.model.empty()) {
    const std::string jinja = checkpoint_template(a.model);
    if (!jinja.empty())
      if (std::string warning = check_checkpoint_template(jinja); !warning.empty())
        std::fprintf(stderr, "warning: %s: %s\n", a.model.c_str(), warning.c_str());
  }
  const json doc = read_json(a.messages);
  ChatTemplateOptions options;
  options.add_generation_prompt = a.generation_prompt;
  options.enable_thinking = a.think;
  json messages;
  if (doc.is_array()) {
    messages = doc;
  } else {
    UG_CHECK(doc.is_object() && doc.contains("messages"),
             "{}: expected a JSON array of messages or an object with \"messages\"", a.messages);
    messages = doc["messages"];
    if (doc.contains("tools")) options.tools = doc["tools"];
  }
  if (!a.tools.empty()) options.tools = tools_from(read_json(a.tools), a.tools);
  const std::string prompt = with_context(a.messages, [&] { return render_chat(messages, options); });
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  return 0;
}

RegisterCommand reg("template", "Render a conversation with the Gemma 4 chat template", [](CLI::App& sub) {
  auto a = std::make_shared<TemplateArgs>();
  sub.add_option("--model", a->model, "Checkpoint folder (its shipped template is checked)");
  sub.add_option("--messages", a->messages, "JSON file: [messages] or {messages, tools?}")->required();
  sub.add_flag("--generation-prompt", a->generation_prompt, "Append the model turn opener");
  sub.add_flag("--think", a->think, "Enable thinking (<|think|>)");
  sub.add_option("--tools", a->tools, "JSON file with the tools array (overrides the messages file)");
  return [a]() { return run_template(*a); };
});

}  // namespace
}  // namespace ug::cli
