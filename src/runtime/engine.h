// Everything needed to generate from a checkpoint folder: the model, its tokenizer and a decoder.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "model/decoder.h"
#include "model/loaded_model.h"
#include "runtime/decoder_factory.h"
#include "runtime/multimodal_prompt.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace ug {

struct EngineOptions {
  WeightLoadOptions weights;
  LoadMode load_mode = LoadMode::Auto;
  std::string tokenizer_path;  // default: DIR/tokenizer.json
  DecoderOptions decoder;
  DeviceSpec device;  // where the decoder computes
  MediaOptions media;
};

struct Engine {
  std::unique_ptr<LoadedModel> model;
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<Decoder> decoder;
  std::unique_ptr<MediaEmbedder> embedder;  // where media embeds: next to the decoder (the GPU's with --device cuda)
  std::unique_ptr<MediaEncoder> media;  // images / audio / video -> prompt pieces (with its embedding cache)
  std::string template_warning;         // non-empty when the checkpoint's chat template differs from ours
};

// Loads DIR; the tokenizer is optional unless `require_tokenizer`. Checks that the tokenizer and the
// model agree on the vocabulary size.
std::unique_ptr<Engine> load_engine(const std::string& dir, const EngineOptions& options, bool require_tokenizer);

// Sampling defaults from generation_config.json (HF: do_sample false -> greedy).
SamplingParams default_sampling(const GenerationConfig& g);

}  // namespace ug
