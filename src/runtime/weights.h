// Weights: the runtime's view of a checkpoint, with no copies of large tensors.
//
// Matrices are Linear/QTensor views into the mapped safetensors files (float or quantized, as
// load_linear() found them); embedding rows are widened to f32 on the fly when a token is looked
// up. Only the small vectors (norm weights, biases, quantization scales) are converted to f32 at
// load time. Which optional parts are used follows the ArchSpec (model/arch.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/dtype.h"
#include "quant/qtensor.h"

namespace qllm {

// A row-major float matrix [n_rows, n_cols] in the checkpoint's dtype (F32, F16 or BF16).
struct EmbeddingView {
  DType dtype = DType::F32;
  const std::byte* data = nullptr;
  int64_t n_rows = 0, n_cols = 0;

  // Writes row `r` as f32 into out[0 .. n_cols).
  void row(int64_t r, float* out) const;
};

// LayerNorm (weight and bias) or RMSNorm (weight only).
struct NormWeights {
  std::vector<float> w;  // [n_embd]
  std::vector<float> b;  // [n_embd] or empty
};

struct LayerWeights {
  NormWeights attn_norm;  // [n_embd]
  Linear wqkv;            // [q_dim + 2*kv_dim, n_embd], fused checkpoints only (GPT-2)
  Linear wq;              // [n_head*head_dim, n_embd]
  Linear wk;              // [n_head_kv*head_dim, n_embd]
  Linear wv;              // [n_head_kv*head_dim, n_embd]
  Linear wo;              // [n_embd, n_head*head_dim]
  NormWeights mlp_norm;   // [n_embd]
  Linear w_gate;          // [n_ff, n_embd], gated MLPs only
  Linear w_up;            // [n_ff, n_embd]
  Linear w_down;          // [n_embd, n_ff]
};

struct Weights {
  EmbeddingView tok_embd;  // [n_vocab, n_embd]
  EmbeddingView pos_embd;  // [n_ctx, n_embd], learned positions only
  std::vector<LayerWeights> layers;  // [n_layer]
  NormWeights final_norm;  // [n_embd]
  Linear lm_head;          // [n_vocab, n_embd]; a view of tok_embd when tied
};

// Calls fn(const Linear&) for every matrix a decode step streams: each layer's Linears (empty
// ones too: those an architecture lacks have no data), then the head.
template <class Fn>
void for_each_linear(const Weights& w, Fn&& fn) {
  for (const LayerWeights& l : w.layers)
    for (const Linear* p : {&l.wqkv, &l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) fn(*p);
  fn(w.lm_head);
}

}  // namespace qllm
