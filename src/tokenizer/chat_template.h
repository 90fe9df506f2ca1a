// Native renderer of the Gemma 4 IT ("mainline": 12B/26B/31B) chat template, the mid-2026
// revision (docs tokenizer_chat.md §2): OpenAI-style messages in, the exact prompt text out
// (starting with the literal "<bos>", to be encoded with special-token parsing).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  // Writes <|think|> into the system turn; when false the generation prompt pre-closes an empty
  // thought channel (`<|channel>thought\n<channel|>`), as the 12B template does by default.
  bool enable_thinking = false;
  // OpenAI-style [{"type":"function","function":{name,description,parameters,response?}}].
  nlohmann::json tools = nlohmann::json::array();
};

// messages: OpenAI-style array [{role, content (string | [parts] | null), tool_calls?,
// tool_call_id?, name?, reasoning?/reasoning_content?, tool_responses?}].
// Content parts: {"type":"text","text":…}, image/image_url/input_image → <|image|>,
// audio/input_audio → <|audio|>, video → <|video|>. Malformed input throws ug::Error naming the
// message index and field.
std::string render_chat(const nlohmann::json& messages, const ChatTemplateOptions& options);

// render_chat plus where its media content parts went. Only those placeholders are media slots: the
// same text elsewhere (an assistant reply that contains the token the model generated, a tool call's
// argument) is literal text.
struct RenderedChat {
  std::string text;
  std::vector<size_t> media_at;  // byte offset in text of each media part's placeholder, ascending
};
RenderedChat render_chat_with_media(const nlohmann::json& messages, const ChatTemplateOptions& options);

// Compares a checkpoint-shipped template (chat_template.jinja text, or tokenizer_config.json's
// chat_template string) with what render_chat implements. Returns "" when it is the same family,
// else a human-readable warning saying what differs.
std::string check_checkpoint_template(std::string_view jinja_text);

}  // namespace ug
