// Activations: every scratch buffer of the forward pass, sized once for a batch of up to
// n_batch tokens (the llama2.c RunState idea), so decoding allocates nothing per token.
#pragma once

#include <cstdint>
#include <vector>

#include "format/hf_config.h"

namespace qllm {

struct Activations {
  int64_t n_batch = 0;
  std::vector<float> x;       // [n_batch, n_embd] residual stream
  std::vector<float> h;       // [n_batch, n_embd] normed input of a block
  std::vector<float> q;       // [n_batch, n_head*head_dim]
  std::vector<float> qkv;     // [n_batch, q_dim + 2*kv_dim] fused projections only
  std::vector<float> att;     // [n_batch, n_head*head_dim] attention output
  std::vector<float> proj;    // [n_batch, n_embd] block output before the residual add
  std::vector<float> ff_a;    // [n_batch, n_ff]
  std::vector<float> ff_b;    // [n_batch, n_ff] gated MLPs only
  std::vector<float> scores;  // [n_head, n_ctx] attention weights, one row per head
  std::vector<float> logits;  // [n_vocab] last token

  Activations() = default;
  Activations(const ModelConfig& c, int64_t n_batch_, int64_t n_ctx, bool fused_qkv, bool gated)
      : n_batch(n_batch_),
        x(n_batch_ * c.n_embd), h(n_batch_ * c.n_embd), q(n_batch_ * c.q_dim()),
        qkv(fused_qkv ? n_batch_ * (c.q_dim() + 2 * c.kv_dim()) : 0), att(n_batch_ * c.q_dim()),
        proj(n_batch_ * c.n_embd), ff_a(n_batch_ * c.n_ff), ff_b(gated ? n_batch_ * c.n_ff : 0),
        scores(c.n_head * n_ctx), logits(c.n_vocab) {}
};

}  // namespace qllm
