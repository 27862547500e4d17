// Speed measurement of a loaded model, in the manner of llama-bench: prompt processing (pp,
// one batch of p tokens from an empty context) and generation (tg, n single-token steps from an
// empty context), each repeated and reported as mean and standard deviation of tokens/s.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model.h"

namespace qllm {

struct SpeedStats {
  int64_t n_tokens = 0;
  std::vector<double> tokens_per_s;  // one per repetition
  double mean() const;
  double stddev() const;
};

// Bytes of weights a single decode step reads: every matrix (quantized data and scales) and one
// embedding row. The KV cache is counted separately because it grows with the position.
struct DecodeTraffic {
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes_per_position = 0;  // K and V of all layers for one cached position
};
DecodeTraffic decode_traffic(const Model& model);

SpeedStats bench_prompt(const Model& model, int64_t n_prompt, int reps);
SpeedStats bench_generate(const Model& model, int64_t n_gen, int reps);

}  // namespace qllm
