// The real Backend: a loaded Engine (tokenizer, media encoder) plus a continuous-batching
// Scheduler.
#pragma once

#include <memory>
#include <mutex>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/backend.h"

namespace ug::server {

class EngineBackend final : public Backend {
 public:
  // The engine must have a tokenizer. It must outlive this object.
  EngineBackend(Engine& engine, SchedulerOptions scheduler_options);
  ~EngineBackend() override;

  const BackendInfo& info() const override { return info_; }
  PromptInput chat_prompt(const nlohmann::json& messages, const ChatTemplateOptions& options,
                          const std::string& forced_prefix,
                          std::span<const MediaSource> media) override;
  PromptInput text_prompt(const CompletionPrompt& prompt) override;
  std::string token_text(int32_t id) const override;
  uint64_t submit(SequenceParams params, SequenceCallbacks callbacks) override;
  void cancel(uint64_t id) override;
  SchedulerStats stats() const override;
  std::shared_ptr<EventBus> event_bus() override { return bus_; }

  // Stops the scheduler (finish_running: let running sequences end, otherwise cancel them).
  void shutdown(bool finish_running);

 private:
  Engine& engine_;
  BackendInfo info_;
  std::shared_ptr<EventBus> bus_ = std::make_shared<EventBus>();
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace ug::server
