// Session: one sequence being run through a Model, with its KV cache and scratch buffers.
//
// forward() appends tokens at the current position. Prompts are processed in batches of up to
// kMaxBatch tokens (one matmul per weight per batch), decoding one token at a time; neither
// allocates (except all_logits output growing past its previous size).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/activations.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "util/thread_pool.h"

namespace qllm {

class Session {
 public:
  static constexpr int64_t kMaxBatch = 64;

  // n_ctx: positions to reserve, <= the model's n_ctx; 0 means the model's n_ctx.
  explicit Session(const Model& model, int64_t n_ctx = 0);

  void reset() { pos_ = 0; }
  int pos() const { return static_cast<int>(pos_); }
  int64_t n_ctx() const { return n_ctx_; }
  const Model& model() const { return *model_; }

  // Runs `ids` at positions [pos(), pos() + n) and advances. Returns logits [n, n_vocab] if
  // all_logits, else [1, n_vocab] for the last token; valid until the next call. Throws
  // FormatError for ids outside the vocabulary or when the context would overflow.
  const float* forward(std::span<const int32_t> ids, bool all_logits);

  // Calibration (GPTQ): when set, receives the input rows x [n_tok, n_in] of every Linear just
  // before it runs; layer is -1 for the lm_head. Unset, it costs one branch per Linear.
  std::function<void(Role role, int layer, const float* x, int64_t n_tok, int64_t n_in)>
      linear_input_hook;

 private:
  // Runs n tokens (n <= kMaxBatch) through the blocks; leaves the final hidden states in act_.x.
  void run_blocks(const int32_t* ids, int64_t n);
  void attention(int64_t layer, int64_t n);
  // Final norm and lm_head for `n` rows of act_.x starting at row `first`.
  void head(int64_t first, int64_t n, float* out);

  const Model* model_;
  const ModelConfig* cfg_;
  int64_t n_ctx_ = 0, pos_ = 0;
  ThreadPool* pool_;
  Activations act_;
  KvCache kv_;
  std::vector<float> rope_cos_, rope_sin_;  // [n_ctx, head_dim/2]
  std::vector<float> all_logits_;           // [n, n_vocab] when requested
};

}  // namespace qllm
