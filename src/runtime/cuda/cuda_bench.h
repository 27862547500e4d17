// `qllm bench --device cuda`: prompt and generation speed on the GPU, VRAM use and the fraction
// of the GPU's measured memory bandwidth the decode step reaches.
#pragma once

#include <cstdint>
#include <string>

namespace qllm::cuda {

struct BenchOptions {
  std::string model_dir;
  int64_t n_prompt = 512, n_gen = 128;
  int reps = 3;
  bool json = false;
};

// Prints the report to stdout; returns the exit code.
int run_bench(const BenchOptions& o);

}  // namespace qllm::cuda
