// Matrix multiplication by a QTensor: the one op that touches weights.
//
// y[t, o] = sum_i W[o, i] * x[t, i]   for t < n_tok, o < W.n_out
// x is [n_tok, n_in] f32 row-major, y is [n_tok, n_out] f32 row-major. Weights stay in their
// stored type and are dequantized inside the kernel, never as a whole-tensor float copy.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/cpu/dispatch.h"
#include "quant/qtensor.h"
#include "util/thread_pool.h"

namespace qllm {

// Splits the output rows over the pool and runs the best kernel for W's qtype on this CPU
// (dispatch.h). QInt4/QInt2 weights need prepare_for_kernels() (prepare.h) for the fast
// kernels; otherwise the reference kernel runs.
// Activations of the int8/int4/int2 kernels: below kActQuantMinTokens tokens (decode, short
// prompts: bandwidth-bound) they stay fine, int16 per block (f32 in the scalar kernels), so the
// error is essentially the weights' own; from kActQuantMinTokens on (compute-bound prefill)
// they are quantized to int8 once per call, per act8_block(w), where the table has an
// int8-activation kernel for the type (dispatch.h). QLLM_ACT_QUANT=never|always overrides the
// choice.
void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

// The same with the kernels of one table (tests and benchmarks compare ISAs with it), under
// QLLM_ACT_QUANT's policy or a given one.
void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            const KernelTable& kernels);
void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            const KernelTable& kernels, ActQuant policy);

// The matmul, then y += bias for each of n_tok rows (no-op for an empty bias).
void linear(const Linear& l, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

// Several matmuls of one x (q, k and v; gate and up) in one pass over the pool: one wake-up and,
// where their kernels take the same activations (type, block, group), one activation
// preparation, instead of one each. Otherwise each runs as matmul() does. Rows are split
// over the threads jointly, so small outputs (k and v) do not leave threads idle.
inline constexpr int kMaxSameInput = 4;
struct MatmulOut {
  const QTensor* w = nullptr;
  float* y = nullptr;            // [n_tok, w->n_out]
  const float* bias = nullptr;   // [w->n_out], added to every token's row; null: none
};
void matmul_same_input(std::span<const MatmulOut> outs, const float* x, int64_t n_tok, ThreadPool& pool,
                       const KernelTable& kernels, ActQuant policy);
struct LinearOut {
  const Linear* l = nullptr;
  float* y = nullptr;
};
void linear_same_input(std::span<const LinearOut> outs, const float* x, int64_t n_tok, ThreadPool& pool);

namespace ref {
// The executable spec: scalar, readable, every faster kernel is tested against it.
// Computes output rows [o_begin, o_end) for all tokens.
void matmul_rows(const QTensor& w, const float* x, int64_t n_tok, float* y, int64_t o_begin,
                 int64_t o_end);
// Dequantizes row o of W into out[0 .. n_in). Used by tests and by the reference kernel.
void dequantize_row(const QTensor& w, int64_t o, float* out);
}  // namespace ref

}  // namespace qllm
