// Speed measurement of a loaded model, in the manner of llama-bench: prompt processing (pp,
// one batch of p tokens from an empty context) and generation (tg, n single-token steps from an
// empty context), each repeated and reported as mean and standard deviation of tokens/s.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/model.h"
#include "util/huge_pages.h"

namespace qllm {

// Mean and sample standard deviation (0 for fewer than two values).
double mean(std::span<const double> v);
double stddev(std::span<const double> v);

struct SpeedStats {
  int64_t n_tokens = 0;
  std::vector<double> tokens_per_s;  // one per repetition
  double mean() const { return qllm::mean(tokens_per_s); }
  double stddev() const { return qllm::stddev(tokens_per_s); }
};

// Bytes of weights a single decode step reads: every matrix (quantized data and scales) and one
// embedding row. The KV cache is counted separately because it grows with the position.
struct DecodeTraffic {
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes_per_position = 0;  // K and V of all layers for one cached position
};
DecodeTraffic decode_traffic(const Model& model);

// How much of the memory that holds the matrices a decode step streams is resident, and in
// 2 MiB pages (util/huge_pages.h): the model file's mapping and the repacked weights.
HugePageShare weight_page_share(const Model& model);

SpeedStats bench_prompt(const Model& model, int64_t n_prompt, int reps);
// between_runs, if set, is called after the warm-up token, between the runs and after the last
// (reps + 1 times, untimed): `qllm bench` measures the memory bandwidth there, beside the runs
// it bounds.
SpeedStats bench_generate(const Model& model, int64_t n_gen, int reps,
                          const std::function<void()>& between_runs = {});

}  // namespace qllm
