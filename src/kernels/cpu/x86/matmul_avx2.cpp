// AVX2 kernels (AVX2 + FMA + F16C) for x86-64 CPUs without AVX-512: the float and float8
// types, with the same register tiling as the AVX-512 kernels (tiling.h). The int8/int4/int2
// kernels are in matmul_fine_avx2.cpp (int16 activations) and matmul_act8_avx2.cpp (int8
// activations, int4/int2 prefill). Row tails shorter than a vector are copied into zero-padded
// buffers (float8) or finished in scalar code (float types).
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "format/convert.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/prepare.h"
#include "kernels/cpu/x86/avx2_util.h"
#include "kernels/cpu/x86/tiling.h"

namespace qllm::x86 {
namespace {

// ---- float8 e4m3fn: same bit trick as the AVX-512 kernel (value / 2^8 as f16) ----

inline void f8x16_to_f32(__m128i bytes, __m256* lo, __m256* hi) {
  __m256i h = _mm256_cvtepi8_epi16(bytes);
  h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16(static_cast<short>(0xbf80)));
  *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

struct Float8Kernel {
  static constexpr int64_t kActBytes = 4;  // f32 x
  const QTensor& w;
  const float* x;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in;
    const auto* base = reinterpret_cast<const int8_t*>(w.data) + o * n_in;
    const RowPrefetch<R> prefetch(base, n_in);
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    auto step = [&](const int8_t* const* wp, const float* const* xp) {
      __m256 lo[R], hi[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) f8x16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp[r])), &lo[r], &hi[r]);
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m256 x0 = _mm256_loadu_ps(xp[t]), x1 = _mm256_loadu_ps(xp[t] + 8);
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          acc[r][t] = _mm256_fmadd_ps(lo[r], x0, acc[r][t]);
          acc[r][t] = _mm256_fmadd_ps(hi[r], x1, acc[r][t]);
        }
      }
    };
    int64_t i = 0;
    const int8_t* wp[R];
    const float* xp[T];
    for (; i + 16 <= n_in; i += 16) {
      QLLM_UNROLL for (int r = 0; r < R; ++r) wp[r] = base + r * n_in + i;
      if (i % 64 == 0) prefetch.at(i);
      QLLM_UNROLL for (int t = 0; t < T; ++t) xp[t] = x + (t0 + t) * n_in + i;
      step(wp, xp);
    }
    if (i < n_in) {
      alignas(32) int8_t wb[R][16] = {};
      alignas(32) float xb[T][16] = {};
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        std::memcpy(wb[r], base + r * n_in + i, n_in - i);
        wp[r] = wb[r];
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        std::memcpy(xb[t], x + (t0 + t) * n_in + i, (n_in - i) * sizeof(float));
        xp[t] = xb[t];
      }
      step(wp, xp);
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = w.scale[o + r] * 256.0f * hsum(acc[r][t]);
  }
};

void rows_float8(const QTensor& w, const float* x, const QuantizedActs&, int64_t n_tok, float* y,
                 int64_t ob, int64_t oe) {
  const Float8Kernel k{w, x, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

// ---- F32 / F16 / BF16 ----

template <QType Q>
inline __m256 load8(const std::byte* base, int64_t index) {
  if constexpr (Q == QType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(base) + index);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(base) + index));
    if constexpr (Q == QType::F16) return _mm256_cvtph_ps(h);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <QType Q>
inline float load1(const std::byte* base, int64_t index) {
  if constexpr (Q == QType::F32) {
    float v;
    std::memcpy(&v, base + 4 * index, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, base + 2 * index, 2);
    if constexpr (Q == QType::F16) return f16_to_f32(h);
    else return bf16_to_f32(h);
  }
}

template <QType Q>
struct FloatKernel {
  static constexpr int64_t kActBytes = 4;  // f32 x
  const QTensor& w;
  const float* x;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in, n_vec = n_in / 8 * 8;
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    constexpr int64_t kBytes = Q == QType::F32 ? 4 : 2;
    const RowPrefetch<R> prefetch(w.data + o * n_in * kBytes, n_in * kBytes);
    for (int64_t i = 0; i < n_vec; i += 8) {
      // f16/bf16 rows as in tiling.h; f32 rows, at 4 bytes a weight, the hardware prefetcher
      // follows well, and prefetching them too cost 8-14% on Zen 1.
      if (Q != QType::F32 && i * kBytes % 64 == 0)
        prefetch.at(i * kBytes);
      __m256 wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = load8<Q>(w.data, (o + r) * n_in + i);
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_loadu_ps(x + (t0 + t) * n_in + i);
        QLLM_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) {
      float s = hsum(acc[r][t]);
      for (int64_t i = n_vec; i < n_in; ++i) s += load1<Q>(w.data, (o + r) * n_in + i) * x[(t0 + t) * n_in + i];
      y[(t0 + t) * w.n_out + o + r] = s;
    }
  }
};

// Transposed (W [n_in, n_out]): NV vectors of 8 outputs x T tokens per tile; output columns
// past the last whole vector are done in scalar code.
template <QType Q, int NV, int T>
void transposed_tile(const QTensor& w, const float* x, float* y, int64_t o, int64_t t0) {
  const int64_t n_in = w.n_in, n_out = w.n_out;
  __m256 acc[NV][T];
  QLLM_UNROLL for (int v = 0; v < NV; ++v) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[v][t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n_in; ++i) {
    __m256 wv[NV];
    QLLM_UNROLL for (int v = 0; v < NV; ++v) wv[v] = load8<Q>(w.data, i * n_out + o + 8 * v);
    QLLM_UNROLL for (int t = 0; t < T; ++t) {
      const __m256 xb = _mm256_set1_ps(x[(t0 + t) * n_in + i]);
      QLLM_UNROLL for (int v = 0; v < NV; ++v) acc[v][t] = _mm256_fmadd_ps(wv[v], xb, acc[v][t]);
    }
  }
  QLLM_UNROLL for (int v = 0; v < NV; ++v) QLLM_UNROLL for (int t = 0; t < T; ++t)
    _mm256_storeu_ps(y + (t0 + t) * n_out + o + 8 * v, acc[v][t]);
}

template <QType Q, int NV, int TMax>
void transposed_rows(const QTensor& w, const float* x, int64_t n_tok, float* y, int64_t ob, int64_t oe) {
  int64_t o = ob;
  auto tokens = [&](auto nv) {
    constexpr int kNV = decltype(nv)::value;
    int64_t t = 0;
    for (; t + TMax <= n_tok; t += TMax) transposed_tile<Q, kNV, TMax>(w, x, y, o, t);
    for (; t < n_tok; ++t) transposed_tile<Q, kNV, 1>(w, x, y, o, t);
  };
  for (; o + 8 * NV <= oe; o += 8 * NV) tokens(std::integral_constant<int, NV>{});
  for (; o + 8 <= oe; o += 8) tokens(std::integral_constant<int, 1>{});
  for (; o < oe; ++o)
    for (int64_t t = 0; t < n_tok; ++t) {
      float s = 0.0f;
      for (int64_t i = 0; i < w.n_in; ++i) s += load1<Q>(w.data, i * w.n_out + o) * x[t * w.n_in + i];
      y[t * w.n_out + o] = s;
    }
}

// BF16 rows at decode. A bf16 value is the top half of an f32, so 16 weights loaded as eight
// 32-bit lanes give the odd elements by masking the low halves and the even ones by shifting
// them up: two cheap ops per 16 weights where widening 16-bit lanes to 32 costs two 2-cycle
// ones per 8 (AMD Zen 1), which made the BF16 lm_head compute-bound at ~7 GB/s per core. x is
// split once per call into even and odd halves per 16 elements (`xs`), in the same order.
struct Bf16DecodeKernel {
  static constexpr int64_t kActBytes = 4;  // f32 x
  const QTensor& w;
  const float* x;   // [n_in]
  const float* xs;  // [n_in / 16 * 16]: per 16 elements, the 8 even ones then the 8 odd ones
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t) const {
    static_assert(T == 1, "one token");
    const int64_t n_in = w.n_in, n_vec = n_in / 16 * 16;
    const auto* base = reinterpret_cast<const uint16_t*>(w.data) + o * n_in;
    const RowPrefetch<R> prefetch(base, n_in * 2);
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    __m256 acc[R];
    QLLM_UNROLL for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_vec; i += 16) {
      if (i % 32 == 0) prefetch.at(i * 2);
      const __m256 xe = _mm256_loadu_ps(xs + i), xo = _mm256_loadu_ps(xs + i + 8);
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + r * n_in + i));
        acc[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, acc[r]);
        acc[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), xo, acc[r]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) {
      float s = hsum(acc[r]);
      for (int64_t i = n_vec; i < n_in; ++i) s += bf16_to_f32(base[r * n_in + i]) * x[i];
      y[o + r] = s;
    }
  }
};

void rows_bf16_decode(const QTensor& w, const float* x, float* y, int64_t ob, int64_t oe) {
  thread_local std::vector<float> xs;  // grow-only: no allocation per token after the first
  const int64_t n_vec = w.n_in / 16 * 16;
  if (xs.size() < static_cast<std::size_t>(n_vec)) xs.resize(static_cast<std::size_t>(n_vec));
  for (int64_t i = 0; i < n_vec; i += 16)
    for (int j = 0; j < 8; ++j) {
      xs[i + j] = x[i + 2 * j];
      xs[i + 8 + j] = x[i + 2 * j + 1];
    }
  const Bf16DecodeKernel k{w, x, xs.data(), y};
  tile_rows<4, 1>(k, 1, ob, oe);
}

template <QType Q>
void rows_float(const QTensor& w, const float* x, const QuantizedActs&, int64_t n_tok, float* y,
                int64_t ob, int64_t oe) {
  if (Q == QType::BF16 && n_tok == 1 && !w.transposed) return rows_bf16_decode(w, x, y, ob, oe);
  if (w.transposed) {
    if (n_tok == 1) transposed_rows<Q, 4, 1>(w, x, n_tok, y, ob, oe);
    else transposed_rows<Q, 2, 4>(w, x, n_tok, y, ob, oe);
    return;
  }
  const FloatKernel<Q> k{w, x, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

}  // namespace

void fill_avx2(KernelTable* t) {
  auto set = [&](QType q, RowsFn fn, bool acts) {
    t->rows[static_cast<int>(q)] = fn;
    t->uses_acts[static_cast<int>(q)] = acts;
  };
  set(QType::F32, rows_float<QType::F32>, false);
  set(QType::F16, rows_float<QType::F16>, false);
  set(QType::BF16, rows_float<QType::BF16>, false);
  set(QType::QFloat8, rows_float8, false);
  fill_avx2_fine(t);
  fill_avx2_act8(t);
}

}  // namespace qllm::x86
