// Row-wise ops of the forward pass (everything except the weight matmuls, which live in
// kernels/cpu/matmul.h). Allocation-free; they follow transformers' float32 formulas so that
// logits match HF's to float rounding (exp to about 1 ulp, sums in a different order).
#pragma once

#include <cstdint>

#include "format/hf_config.h"
#include "runtime/weights.h"

namespace qllm::ops {

// out = (x - mean) / sqrt(var + eps) * w + b   (biased variance, as torch.nn.LayerNorm)
void layer_norm(const float* x, const NormWeights& n, int64_t dim, float eps, float* out);
// out = x / sqrt(mean(x^2) + eps) * w          (LlamaRMSNorm)
void rms_norm(const float* x, const NormWeights& n, int64_t dim, float eps, float* out);

// In place: x = act(x).
void activate(Activation act, float* x, int64_t n);
// In place: gate = act(gate) * up.
void activate_mul(Activation act, float* gate, const float* up, int64_t n);

// RoPE tables for positions [0, n_pos): cos/sin [n_pos, head_dim/2], computed as transformers'
// rotary embedding does in float32 (inv_freq = 1 / theta^(2i/d), then `scaling`'s rule,
// angle = pos * inv_freq).
void rope_tables(float theta, const RopeScaling& scaling, int64_t head_dim, int64_t n_pos, float* cos_out,
                 float* sin_out);
// Rotates n_heads heads of head_dim at `x` in the rotate-half convention (first half paired with
// second half), with the table rows of one position.
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

// One query head over keys/values [0, n_kv): out = softmax(q.K^T * scale) V.
// k and v point at head `kv_head` of position 0; rows are `stride` floats apart. `scores` holds
// n_kv floats of scratch.
void attend(const float* q, const float* k, const float* v, int64_t stride, int64_t n_kv,
            int64_t head_dim, float scale, float* scores, float* out);

}  // namespace qllm::ops
