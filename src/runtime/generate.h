// Generation: prompt in, new tokens out, one forward step per token.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/session.h"

namespace qllm {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplerOptions sampler;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these
};

struct GenerateResult {
  std::vector<int32_t> ids;  // new tokens only, the stop token included (as transformers does)
  bool stopped = false;      // ended on a stop id (not on max_new_tokens or the context end)
  int64_t decode_steps = 0;  // single-token forward passes after the prompt
  double prompt_seconds = 0, decode_seconds = 0;  // prompt pass; sampling + decode steps
};

// Resets `s`, runs the prompt as one batch, then samples up to max_new_tokens tokens, calling
// on_token for each as soon as it is chosen. Stops early at the end of the session's context.
GenerateResult generate(Session& s, std::span<const int32_t> prompt, const GenerateOptions& opts,
                        const std::function<void(int32_t)>& on_token = {});

}  // namespace qllm
