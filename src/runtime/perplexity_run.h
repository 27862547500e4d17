// Perplexity of a loaded model (and optionally its divergence from a base model) on a text
// file: reads and checks the text, tokenizes it with the model's tokenizer, plans the windows of
// the chosen method (perplexity.h) and runs them through Sessions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "runtime/model.h"
#include "runtime/perplexity.h"

namespace qllm {

struct PerplexityOptions {
  PplMethod method = PplMethod::Chunks;
  int64_t ctx = 0;     // 0: min(512, the model's n_ctx)
  int64_t stride = 0;  // stride method; 0: ctx / 2
  int64_t max_windows = 0;  // evaluate only the first N windows (llama.cpp --chunks); 0: all
  bool cuda = false;        // run the model (and the base) on the CUDA device, f32 prefill
};

struct PerplexityRun {
  PplResult result;
  int64_t ctx = 0, stride = 0;
  int64_t n_text_tokens = 0, n_scored = 0;
};

// Throws FormatError for an unreadable, empty or too-short text, a ctx beyond the model's
// context, or a base model whose vocabulary differs from the model's.
PerplexityRun run_perplexity(const Model& model, const Model* base,
                             const std::filesystem::path& text_path,
                             const PerplexityOptions& opts, const PplProgress& progress = {});

// The text file with CRLF normalised to LF; FormatError if unreadable or empty.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace qllm
