// Perplexity of a causal LM on a text, and its divergence from a base model, three ways.
//
// A method turns the text's tokens into windows: each window is one independent forward pass
// (fresh KV cache), and the logits at positions [score_begin, score_end) of a window predict
// ids[p + 1]. Every scored token is scored once.
//   chunks  llama.cpp's tools/perplexity: tokenize the whole text (with BOS if the tokenizer
//           adds one), cut it into non-overlapping chunks of ctx tokens (the tail that does not
//           fill a chunk is dropped), put BOS in place of each chunk's first token, and score the
//           second half: logits at positions [ctx/2, ctx-1), so the model always has at least
//           ctx/2 tokens of context.
//   stride  Hugging Face's sliding window (transformers docs, "Perplexity of fixed-length
//           models"): windows of ctx tokens starting every `stride` tokens; each window scores
//           only the tokens the previous window did not (trg_len), so every token but the first
//           is scored once with up to ctx-1 tokens of context. No BOS beyond what the tokenizer
//           adds. (The doc weights each window's mean loss by trg_len-1; here each token counts
//           once, which is the exact per-token mean.)
//   lines   the stories260K reference protocol: CRLF -> LF, each non-empty whitespace-stripped
//           line is one sequence, encoded with BOS and truncated to ctx tokens; tokens 1..n-1
//           are scored given their prefix.
// The evaluator runs the model (and the base, in the same pass) window by window and keeps the
// statistics of kl_stats.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kl_stats.h"
#include "util/thread_pool.h"

namespace qllm {

enum class PplMethod { Chunks, Stride, Lines };

std::string_view ppl_method_name(PplMethod m);
std::optional<PplMethod> ppl_method_from_name(std::string_view s);
// One line that says what the method computes, for reports.
std::string_view ppl_method_description(PplMethod m);

struct EvalWindow {
  std::vector<int32_t> ids;
  int64_t score_begin = 0, score_end = 0;  // logits positions; position p predicts ids[p + 1]
  int64_t n_scored() const { return score_end - score_begin; }
};

struct PplPlan {
  PplMethod method = PplMethod::Chunks;
  int64_t ctx = 0;
  int64_t n_text_tokens = 0;  // tokens of the whole text (chunks, stride) or of all lines
  std::vector<EvalWindow> windows;
  int64_t n_scored() const;
};

// Replaces CRLF (and lone CR) line ends by LF.
std::string normalize_newlines(std::string_view text);

// The planners throw FormatError naming `source` when the text is too short for the method.
// `bos`: the id that replaces each chunk's first token, or nullopt when the tokenizer adds no
// BOS (llama.cpp replaces only when add_bos is set).
PplPlan plan_chunks(std::span<const int32_t> tokens, int64_t ctx, std::optional<int32_t> bos,
                    const std::filesystem::path& source);
PplPlan plan_stride(std::span<const int32_t> tokens, int64_t ctx, int64_t stride,
                    const std::filesystem::path& source);
// `encode` turns one line into ids with BOS first.
PplPlan plan_lines(std::string_view text, int64_t ctx,
                   const std::function<std::vector<int32_t>(std::string_view)>& encode,
                   const std::filesystem::path& source);

// Runs one window: returns logits [ids.size(), n_vocab], valid until the next call.
using LogitsFn = std::function<const float*(std::span<const int32_t> ids)>;

struct PplResult {
  PplMethod method = PplMethod::Chunks;
  int64_t ctx = 0, n_windows = 0;
  NllStats model;
  std::optional<NllStats> base;  // with a base model
  std::optional<KlSummary> kl;   // KL(base || model), top-1 agreement
};

// Called after each window with (windows done, windows total, model's running stats).
using PplProgress = std::function<void(int64_t, int64_t, const NllStats&)>;

PplResult evaluate_perplexity(const PplPlan& plan, int64_t n_vocab, const LogitsFn& model,
                              const LogitsFn* base, ThreadPool& pool,
                              const PplProgress& progress = {});

}  // namespace qllm
