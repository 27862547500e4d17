// One query head's attention over the KV cache (ops.h attend), the only op besides the matmuls
// whose cost grows with the context: about a tenth of a GPT-2 prefill of 128 tokens.
//
// Written once with GCC vector types and compiled three times, for AVX-512, AVX2 and baseline
// x86-64, each with vectors as wide as its registers (16, 8, 4 floats); attend() picks one by
// cpuid. (A single vector type for every ISA is the trap: GCC lowers a vector wider than the
// target's registers through the stack, which made 16-float code run at 2 GFLOP/s under AVX2.)
//   scores  8 keys at a time: one running sum per key, then one transposing add tree for all 8
//   softmax branch-free exp (fast_exp.h) in a loop the compiler vectorizes
//   values  the output's columns summed over all keys in registers, 64 columns at a time
#include <algorithm>
#include <cmath>

#include "runtime/fast_exp.h"
#include "runtime/ops.h"

namespace qllm::ops {
namespace {

// Vectors of 4, 8 and 16 floats; aligned(4) makes loads through them unaligned ones, and
// vector types may alias their element type.
using Float4 = float __attribute__((vector_size(16), aligned(4)));
using Float8 = float __attribute__((vector_size(32), aligned(4)));
using Float16 = float __attribute__((vector_size(64), aligned(4)));

// These helpers pass vectors by value and are always inlined into the ISA-specific copies below,
// so the baseline ABI for wide vectors that GCC warns about (-Wpsabi) is never used.
#pragma GCC diagnostic ignored "-Wpsabi"

template <class V>
[[gnu::always_inline]] inline const V& load(const float* p) {
  return *reinterpret_cast<const V*>(p);
}

// The sum of v's lanes folded into 4 lanes.
template <class V>
[[gnu::always_inline]] inline Float4 fold4(V v) {
  if constexpr (sizeof(V) == 64) {
    const Float8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                        __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    return fold4(h);
  } else if constexpr (sizeof(V) == 32) {
    return __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  } else {
    return v;
  }
}

// Neighbouring lanes of a and then of b added: [a0+a1, a2+a3, b0+b1, b2+b3].
[[gnu::always_inline]] inline Float4 pair_sums(Float4 a, Float4 b) {
  return __builtin_shufflevector(a, b, 0, 2, 4, 6) + __builtin_shufflevector(a, b, 1, 3, 5, 7);
}

// scores[j] = scale * q . k_j for the 8 keys k + j * stride (head_dim a multiple of the width).
template <class V>
[[gnu::always_inline]] inline void scores8(const float* q, const float* k, int64_t stride, int64_t head_dim,
                                           float scale, float* scores) {
  constexpr int kW = sizeof(V) / 4;
  V s[8] = {};
  for (int64_t d = 0; d < head_dim; d += kW) {
    const V qd = load<V>(q + d);
    for (int j = 0; j < 8; ++j) s[j] += qd * load<V>(k + j * stride + d);
  }
  for (int h = 0; h < 8; h += 4) {
    const Float4 a = pair_sums(fold4(s[h]), fold4(s[h + 1])), b = pair_sums(fold4(s[h + 2]), fold4(s[h + 3]));
    const Float4 sums = pair_sums(a, b) * scale;
    for (int j = 0; j < 4; ++j) scores[h + j] = sums[j];
  }
}

template <class V>
[[gnu::always_inline]] inline void attend_with(const float* q, const float* k, const float* v, int64_t stride,
                                               int64_t n_kv, int64_t head_dim, float scale, float* scores,
                                               float* out) {
  constexpr int kW = sizeof(V) / 4;
  int64_t j = 0;
  if (head_dim % kW == 0)
    for (; j + 8 <= n_kv; j += 8) scores8<V>(q, k + j * stride, stride, head_dim, scale, scores + j);
  for (; j < n_kv; ++j) {
    float s = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) s += q[d] * k[j * stride + d];
    scores[j] = s * scale;
  }
  // Max and sum with vector partial results: one running float each would be a chain of n_kv
  // dependent operations (the compiler may not reorder float math).
  V vmx = V{} - INFINITY;
  for (j = 0; j + kW <= n_kv; j += kW) {
    const V x = load<V>(scores + j);
    vmx = vmx > x ? vmx : x;
  }
  float mx = -INFINITY;
  for (int l = 0; l < kW; ++l) mx = std::max(mx, vmx[l]);
  for (; j < n_kv; ++j) mx = std::max(mx, scores[j]);
  for (j = 0; j < n_kv; ++j) scores[j] = exp_approx(scores[j] - mx);  // vectorizes
  V vsum = {};
  for (j = 0; j + kW <= n_kv; j += kW) vsum += load<V>(scores + j);
  float sum = 0.0f;
  for (int l = 0; l < kW; ++l) sum += vsum[l];
  for (; j < n_kv; ++j) sum += scores[j];
  const float inv = 1.0f / sum;
  for (j = 0; j < n_kv; ++j) scores[j] *= inv;
  // Columns summed over all keys in registers, 64 at a time as independent sums: summing into
  // `out` key by key made every key a store and a reload of it.
  constexpr int kCols = 64, kVecs = kCols / kW;
  int64_t d0 = 0;
  for (; d0 + kCols <= head_dim; d0 += kCols) {
    V acc[kVecs] = {};
    for (j = 0; j < n_kv; ++j) {
      const float p = scores[j];
      for (int c = 0; c < kVecs; ++c) acc[c] += p * load<V>(v + j * stride + d0 + kW * c);
    }
    for (int c = 0; c < kVecs; ++c) *reinterpret_cast<V*>(out + d0 + kW * c) = acc[c];
  }
  for (int64_t d = d0; d < head_dim; ++d) {
    float acc = 0.0f;
    for (j = 0; j < n_kv; ++j) acc += scores[j] * v[j * stride + d];
    out[d] = acc;
  }
}

using AttendFn = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t, float, float*,
                          float*);

void attend_base(const float* q, const float* k, const float* v, int64_t stride, int64_t n_kv, int64_t head_dim,
                 float scale, float* scores, float* out) {
  attend_with<Float4>(q, k, v, stride, n_kv, head_dim, scale, scores, out);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void attend_avx2(const float* q, const float* k, const float* v, int64_t stride,
                                                     int64_t n_kv, int64_t head_dim, float scale, float* scores,
                                                     float* out) {
  attend_with<Float8>(q, k, v, stride, n_kv, head_dim, scale, scores, out);
}

__attribute__((target("avx512f"))) void attend_avx512(const float* q, const float* k, const float* v, int64_t stride,
                                                      int64_t n_kv, int64_t head_dim, float scale, float* scores,
                                                      float* out) {
  attend_with<Float16>(q, k, v, stride, n_kv, head_dim, scale, scores, out);
}
#endif

AttendFn choose() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return attend_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return attend_avx2;
#endif
  return attend_base;
}

}  // namespace

void attend(const float* q, const float* k, const float* v, int64_t stride, int64_t n_kv, int64_t head_dim,
            float scale, float* scores, float* out) {
  static const AttendFn fn = choose();
  fn(q, k, v, stride, n_kv, head_dim, scale, scores, out);
}

}  // namespace qllm::ops
