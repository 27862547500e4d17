// Activation policy (see dispatch.h): the int8/int4/int2 kernels take fine activations (f32,
// or int16 on AVX-512) below kActQuantMinTokens tokens (bandwidth-bound decode and short
// prompts: the weights' error alone, as weight-only formats promise) and int8 activations from
// there on (compute-bound prefill, vpdpbusd). QLLM_ACT_QUANT=never|always forces one or the
// other.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <span>
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
  std::vector<float> lane_scale, offset, group_sum, group_sum_t, block_scale_t, d16;
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
  if (affine && quantize) {
    // Transposed, for kernels that take the shift terms and block scales of several tokens at
    // once.
    const int64_t ts = n_tok + kTokenPad, n_blocks = a.stride / a.block8;
    grow(buf.group_sum_t, static_cast<std::size_t>(gpr * ts));
    grow(buf.block_scale_t, static_cast<std::size_t>(n_blocks * ts));
    float *gt = buf.group_sum_t.data(), *dt = buf.block_scale_t.data();
    for (int64_t g = 0; g < gpr; ++g) {
      for (int64_t t = 0; t < n_tok; ++t) gt[g * ts + t] = group_sum[t * gpr + g];
      std::fill_n(gt + g * ts + n_tok, kTokenPad, 0.0f);
    }
    const int64_t lanes = a.stride / 4, lanes_per_block = a.block8 / 4;
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (int64_t t = 0; t < n_tok; ++t) dt[b * ts + t] = lane_scale[t * lanes + b * lanes_per_block];
      std::fill_n(dt + b * ts + n_tok, kTokenPad, 0.0f);
    }
    a.group_sum_t = gt;
    a.block_scale_t = dt;
    a.token_stride_t = ts;
  }
  return a;
}

// Output rows per parallel chunk boundary: a multiple of every kernel's row tile.
constexpr int64_t kRowAlign = 16;
// Prompts of this many tokens or more split rows into ThreadPool::kMaxChunksPerThread chunks
// per thread: their matmuls take milliseconds, and with one chunk per thread a thread the
// machine slows down kept the others waiting (9% of a 2-thread Qwen2-0.5B pp128 went to
// yielding and scheduling in perf).
constexpr int64_t kBalancedMinTokens = 16;
static_assert(kRowAlign % kTileRows == 0, "Interleaved16 tiles must not straddle two threads");

// What prepare_acts makes for w: matmuls whose keys are equal can share one preparation.
struct ActsKey {
  bool used = false, quantized = false;
  int64_t block = 0, group_size = 0;
  bool operator==(const ActsKey&) const = default;
};

// y[t, o] += bias[o] for rows [lo, hi) of every token, by the thread that computed them, while
// they are in its cache: added after the matmul on the calling thread, it was serial work in
// every biased linear (GPT-2's) that grew with the prompt.
void add_bias_rows(const MatmulOut& out, int64_t n_tok, int64_t lo, int64_t hi) {
  if (out.bias == nullptr) return;
  const int64_t n_out = out.w->n_out;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = lo; o < hi; ++o) out.y[t * n_out + o] += out.bias[o];
}

ActsKey acts_key(const KernelTable& kt, const QTensor& w, bool quantized) {
  ActsKey k;
  k.used = kt.uses_acts[static_cast<int>(w.qtype)];
  if (!k.used) return k;
  k.quantized = quantized;
  k.block = quantized ? act8_block(kt, w) : kt.quantize_acts16 != nullptr ? fine16_block(kt, w) : 0;
  k.group_size = qtype_info(w.qtype).affine ? w.group_size : 0;
  return k;
}

}  // namespace

void matmul_same_input(std::span<const MatmulOut> outs, const float* x, int64_t n_tok, ThreadPool& pool,
                       const KernelTable& kt, ActQuant policy) {
  if (n_tok <= 0) return;
  const auto n = static_cast<int>(outs.size());
  if (n > kMaxSameInput) fail_usage("matmul_same_input: {} outputs, at most {}", n, kMaxSameInput);
  RowsFn fns[kMaxSameInput];
  int64_t first_row[kMaxSameInput + 1] = {};  // in the joint row space, kRowAlign-aligned
  bool quantized[kMaxSameInput];
  bool shared = true;  // one kernel-accepted preparation serves every output
  for (int j = 0; j < n; ++j) {
    const QTensor& w = *outs[j].w;
    if (w.n_in != outs[0].w->n_in) fail_usage("matmul_same_input: inputs of {} and {} columns", w.n_in, outs[0].w->n_in);
    const int q = static_cast<int>(w.qtype);
    quantized[j] = uses_quantized_acts(kt, w, n_tok, policy);
    fns[j] = kt.uses_acts[q] && !quantized[j] ? kt.rows_fine[q] : kt.rows[q];
    shared = shared && kernel_accepts(kt, w) && acts_key(kt, w, quantized[j]) == acts_key(kt, *outs[0].w, quantized[0]);
    first_row[j + 1] = first_row[j] + (w.n_out + kRowAlign - 1) / kRowAlign * kRowAlign;
  }
  if (!shared) {
    for (const MatmulOut& o : outs) {
      const QTensor& w = *o.w;
      if (!kernel_accepts(kt, w)) {
        pool.parallel_for(w.n_out, [&](int64_t b, int64_t e) {
          ref::matmul_rows(w, x, n_tok, o.y, b, e);
          add_bias_rows(o, n_tok, b, e);
        }, kRowAlign);
      } else {
        matmul_same_input(std::span(&o, 1), x, n_tok, pool, kt, policy);
      }
    }
    return;
  }
  const QTensor& w0 = *outs[0].w;
  QuantizedActs acts;
  if (kt.uses_acts[static_cast<int>(w0.qtype)]) acts = prepare_acts(kt, w0, x, n_tok, quantized[0], pool);
  // A chunk of joint rows may span several outputs; each gets its own slice.
  const int chunks = n_tok >= kBalancedMinTokens ? ThreadPool::kMaxChunksPerThread : 1;
  pool.parallel_for(first_row[n], [&](int64_t b, int64_t e) {
    for (int j = 0; j < n; ++j) {
      const int64_t lo = std::max(b, first_row[j]) - first_row[j];
      const int64_t hi = std::min(e, first_row[j] + outs[j].w->n_out) - first_row[j];
      if (lo < hi) {
        fns[j](*outs[j].w, x, acts, n_tok, outs[j].y, lo, hi);
        add_bias_rows(outs[j], n_tok, lo, hi);
      }
    }
  }, kRowAlign, chunks);
}

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, const KernelTable& kt,
            ActQuant policy) {
  const MatmulOut out{&w, y};
  matmul_same_input(std::span(&out, 1), x, n_tok, pool, kt, policy);
}

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, const KernelTable& kt) {
  matmul(w, x, n_tok, y, pool, kt, act_quant_policy());
}

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul(w, x, n_tok, y, pool, active_kernels());
}

namespace {

const float* bias_of(const Linear& l) { return l.bias.empty() ? nullptr : l.bias.data(); }

}  // namespace

void linear(const Linear& l, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const MatmulOut out{&l.w, y, bias_of(l)};
  matmul_same_input(std::span(&out, 1), x, n_tok, pool, active_kernels(), act_quant_policy());
}

void linear_same_input(std::span<const LinearOut> outs, const float* x, int64_t n_tok, ThreadPool& pool) {
  MatmulOut mo[kMaxSameInput];
  if (outs.size() > static_cast<std::size_t>(kMaxSameInput))
    fail_usage("linear_same_input: {} outputs, at most {}", outs.size(), kMaxSameInput);
  for (std::size_t j = 0; j < outs.size(); ++j) mo[j] = {&outs[j].l->w, outs[j].y, bias_of(*outs[j].l)};
  matmul_same_input(std::span(mo, outs.size()), x, n_tok, pool, active_kernels(), act_quant_policy());
}

}  // namespace qllm
