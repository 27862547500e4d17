// Activation policy (see dispatch.h): the int8/int4/int2 kernels take fine activations (f32,
// or int16 on AVX-512) below kActQuantMinTokens tokens (bandwidth-bound decode and short
// prompts: the weights' error alone, as weight-only formats promise) and int8 activations from
// there on (compute-bound prefill, vpdpbusd). QLLM_ACT_QUANT=never|always forces one or the
// other.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/prepare.h"
#include "util/error.h"

namespace qllm {
namespace {

// Grow-only per-thread buffers for quantized activations: after warm-up a decode step does
// no heap allocation.
struct ActsBuffer {
  std::vector<int8_t> q;
  std::vector<int16_t> q16;
  std::vector<float> lane_scale, offset, group_sum, d16;
};

template <typename V>
void grow(V& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

// Sum of n floats in 8 interleaved partial sums, which the compiler keeps in one vector: a
// single running sum is a chain of dependent adds, 4 cycles each.
float sum_floats(const float* x, int64_t n) {
  float lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += x[i + k];
  for (; i < n; ++i) lane[i % 8] += x[i];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

// Prompts at least this long split the activations' preparation over the pool by token: done on
// the calling thread alone, it was serial work in every matmul that grew with the prompt.
constexpr int64_t kParallelActsMinTokens = 4;

// Activations for one call: int8 quantized when `quantize`, else int16 where the table's fine
// kernels take them, and the exact group sums of x that the affine (int4/int2) kernels of
// either kind need for their shift term.
QuantizedActs prepare_acts(const KernelTable& kt, const QTensor& w, const float* x, int64_t n_tok,
                           bool quantize, ThreadPool& pool) {
  thread_local ActsBuffer buf;
  const int64_t n_in = w.n_in;
  QuantizedActs a;
  if (quantize) {
    const int64_t block = act8_block(kt, w), unit = std::max<int64_t>(64, block);
    const int64_t stride = (n_in + unit - 1) / unit * unit;
    grow(buf.q, static_cast<std::size_t>(n_tok * stride));
    grow(buf.lane_scale, static_cast<std::size_t>(n_tok * stride / 4));
    grow(buf.offset, static_cast<std::size_t>(n_tok));
    a.stride = stride;
    a.block8 = block;
    a.q = buf.q.data();
    a.lane_scale = buf.lane_scale.data();
    a.offset = buf.offset.data();
  } else if (kt.quantize_acts16 != nullptr && fine16_block(kt, w) > 0) {
    const int64_t block = fine16_block(kt, w), stride = (n_in + block - 1) / block * block;
    grow(buf.q16, static_cast<std::size_t>(n_tok * stride));
    grow(buf.d16, static_cast<std::size_t>(n_tok * stride / block));
    a.block16 = block;
    a.stride16 = stride;
    a.q16 = buf.q16.data();
    a.d16 = buf.d16.data();
  }
  const bool affine = qtype_info(w.qtype).affine;
  const int64_t gs = w.group_size, gpr = affine ? n_in / gs : 0;
  if (affine) {
    grow(buf.group_sum, static_cast<std::size_t>(n_tok * gpr));
    a.group_sum = buf.group_sum.data();
  }
  // Token rows [b, e) of each buffer. `buf` is the calling thread's (thread_local), so the
  // workers get its pointers, not the name.
  int8_t* q = buf.q.data();
  int16_t* q16 = buf.q16.data();
  float *lane_scale = buf.lane_scale.data(), *offset = buf.offset.data(), *d16 = buf.d16.data();
  float* group_sum = buf.group_sum.data();
  auto rows = [&](int64_t b, int64_t e) {
    const float* xb = x + b * n_in;
    if (a.q != nullptr) {
      kt.quantize_acts(xb, e - b, n_in, a.block8, a.stride, q + b * a.stride, lane_scale + b * (a.stride / 4),
                       offset + b);
    } else if (a.q16 != nullptr) {
      kt.quantize_acts16(xb, e - b, n_in, a.block16, a.stride16, q16 + b * a.stride16,
                         d16 + b * (a.stride16 / a.block16));
    }
    if (affine)
      for (int64_t t = b; t < e; ++t)
        for (int64_t g = 0; g < gpr; ++g) group_sum[t * gpr + g] = sum_floats(x + t * n_in + g * gs, gs);
  };
  if (n_tok >= kParallelActsMinTokens) pool.parallel_for(n_tok, rows);
  else rows(0, n_tok);
  return a;
}

// Output rows per parallel chunk boundary: a multiple of every kernel's row tile.
constexpr int64_t kRowAlign = 16;
static_assert(kRowAlign % kTileRows == 0, "Interleaved16 tiles must not straddle two threads");

}  // namespace

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, const KernelTable& kt,
            ActQuant policy) {
  if (n_tok <= 0 || w.n_out <= 0) return;
  if (!kernel_accepts(kt, w)) {
    pool.parallel_for(w.n_out, [&](int64_t b, int64_t e) { ref::matmul_rows(w, x, n_tok, y, b, e); }, kRowAlign);
    return;
  }
  const int q = static_cast<int>(w.qtype);
  const bool quantized = uses_quantized_acts(kt, w, n_tok, policy);
  QuantizedActs acts;
  if (kt.uses_acts[q]) acts = prepare_acts(kt, w, x, n_tok, quantized, pool);
  const RowsFn fn = kt.uses_acts[q] && !quantized ? kt.rows_fine[q] : kt.rows[q];
  pool.parallel_for(w.n_out, [&](int64_t b, int64_t e) { fn(w, x, acts, n_tok, y, b, e); }, kRowAlign);
}

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, const KernelTable& kt) {
  matmul(w, x, n_tok, y, pool, kt, act_quant_policy());
}

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul(w, x, n_tok, y, pool, active_kernels());
}

void linear(const Linear& l, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul(l.w, x, n_tok, y, pool);
  if (l.bias.empty()) return;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = 0; o < l.w.n_out; ++o) y[t * l.w.n_out + o] += l.bias[o];
}

}  // namespace qllm
