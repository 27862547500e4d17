// Sampler: picks the next token from a row of logits, with transformers' semantics.
//
// Order as in transformers' generate(): repetition penalty (a logits processor), then the
// warpers temperature, top-k, top-p, then a draw from the softmax. Temperature 0 means greedy
// (argmax after the penalty). The draw uses std::mt19937_64, so a seed reproduces a run.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace qllm {

struct SamplerOptions {
  float temperature = 0.0f;         // 0: greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float repetition_penalty = 1.0f;  // 1: off; HF: positive logits / p, negative * p
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplerOptions& opts, int64_t n_vocab);

  // `logits` [n_vocab] is modified in place. `history` holds the prompt and generated ids the
  // repetition penalty applies to (each distinct id once).
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplerOptions opts_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;   // [n_vocab] candidate ids, preallocated
  std::vector<float> probs_;     // [n_vocab]
  std::vector<uint8_t> seen_;    // [n_vocab] repetition-penalty marks
};

}  // namespace qllm
