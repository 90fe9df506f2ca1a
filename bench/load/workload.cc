#include "load/workload.h"

#include <array>

namespace ug::load {

using nlohmann::json;

namespace {

constexpr std::array<const char*, 64> kWords = {
    "time",    "year",    "people",   "way",    "day",    "man",     "thing",   "woman",
    "life",    "child",   "world",    "school", "state",  "family",  "student", "group",
    "country", "problem", "hand",     "part",   "place",  "case",    "week",    "company",
    "system",  "program", "question", "work",   "number", "night",   "point",   "home",
    "water",   "room",    "mother",   "area",   "money",  "story",   "fact",    "month",
    "lot",     "right",   "study",    "book",   "eye",    "job",     "word",    "business",
    "issue",   "side",    "kind",     "head",   "house",  "service", "friend",  "father",
    "power",   "hour",    "game",     "line",   "end",    "member",  "law",     "car"};

json user_message(std::mt19937_64& rng, int64_t words) {
  return {{"role", "user"}, {"content", random_words(rng, words)}};
}

}  // namespace

std::string random_words(std::mt19937_64& rng, int64_t n) {
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[rng() % kWords.size()];
  }
  return s;
}

std::string chat_body(const WorkloadOptions& o, const json& messages, int64_t max_tokens) {
  json body{{"model", o.model},         {"messages", messages},
            {"max_tokens", max_tokens}, {"temperature", o.temperature},
            {"stream", true},           {"stream_options", {{"include_usage", true}}}};
  if (o.temperature > 0) body["seed"] = int64_t(o.seed % 1000003);  // reproducible runs
  return body.dump();
}

Workload::Workload(const WorkloadOptions& options, uint64_t client_id)
    : o_(options), rng_(options.seed * 1000003 + client_id) {
  new_conversation();
}

void Workload::new_conversation() {
  messages_ = json::array();
  if (o_.prefix_words > 0) {
    std::mt19937_64 shared(o_.seed);  // the same system prompt for every client
    messages_.push_back({{"role", "system"}, {"content", random_words(shared, o_.prefix_words)}});
  }
  turn_ = 0;
}

RequestPlan Workload::next() {
  std::uniform_real_distribution<double> u(0, 1);
  last_was_conversation_ = false;
  if (o_.bad_fraction > 0 && u(rng_) < o_.bad_fraction) return bad_request();
  RequestPlan p;
  if (turn_ >= o_.turns) new_conversation();
  messages_.push_back(user_message(rng_, o_.prompt_words));
  p.body = chat_body(o_, messages_, o_.max_tokens);
  last_was_conversation_ = true;
  if (o_.cancel_fraction > 0 && u(rng_) < o_.cancel_fraction)
    p.cancel_after_chunks = 1 + int64_t(rng_() % uint64_t(std::max<int64_t>(1, o_.max_tokens / 2)));
  return p;
}

void Workload::done(const RequestResult& r) {
  if (!last_was_conversation_) return;
  ++turn_;
  if (r.outcome == Outcome::Ok && o_.turns > 1)
    messages_.push_back({{"role", "assistant"}, {"content", r.content}});  // verbatim, as an agent re-sends it
  else
    new_conversation();  // a failed or cancelled turn ends the conversation
}

// Bad input of several kinds, each of which the server must answer with a 4xx OpenAI error.
RequestPlan Workload::bad_request() {
  RequestPlan p;
  p.expect_rejection = true;
  const json user = json::array({{{"role", "user"}, {"content", "hi"}}});
  json body = json::parse(chat_body(o_, user, 8));
  switch (rng_() % 6) {
    case 0:
      p.body = R"({"model": "x", "messages": [)";
      return p;  // malformed JSON
    case 1:
      body["temprature"] = 0.5;
      break;  // unknown field
    case 2:
      body["max_tokens"] = -1;
      break;
    case 3:
      body["model"] = "no-such-model";
      break;
    case 4:
      body["max_tokens"] = int64_t(1) << 40;
      break;  // beyond the context
    default:
      body["messages"][0]["content"] =
          json::array({{{"type", "image_url"},
                        {"image_url", {{"url", "data:image/png;base64,@@not-base64@@"}}}}});
  }
  p.body = body.dump();
  return p;
}

}  // namespace ug::load
