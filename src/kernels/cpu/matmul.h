// Matrix multiplication by a QTensor: the one op that touches weights.
//
// y[t, o] = sum_i W[o, i] * x[t, i]   for t < n_tok, o < W.n_out
// x is [n_tok, n_in] f32 row-major, y is [n_tok, n_out] f32 row-major. Weights stay in their
// stored type and are dequantized inside the kernel, never as a whole-tensor float copy.
#pragma once

#include <cstdint>

#include "quant/qtensor.h"
#include "util/thread_pool.h"

namespace qllm {

// Splits the output rows over the pool and runs the best kernel for W's qtype on this CPU.
void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

// y += bias for each of n_tok rows (no-op for an empty bias), then the matmul.
void linear(const Linear& l, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

namespace ref {
// The executable spec: scalar, readable, every faster kernel is tested against it.
// Computes output rows [o_begin, o_end) for all tokens.
void matmul_rows(const QTensor& w, const float* x, int64_t n_tok, float* y, int64_t o_begin,
                 int64_t o_end);
// Dequantizes row o of W into out[0 .. n_in). Used by tests and by the reference kernel.
void dequantize_row(const QTensor& w, int64_t o, float* out);
}  // namespace ref

}  // namespace qllm
