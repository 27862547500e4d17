// BF16 weights with AVX-512 BF16 (`vdpbf16ps`), for CPUs that have it (dispatch.cpp checks).
//
// Widening bf16 weights to f32 costs three instructions per 16 weights (zero-extend, shift,
// FMA), which kept a BF16 lm_head at 70% of the memory bandwidth on two cores. vdpbf16ps
// multiplies 32 bf16 pairs exactly into f32 sums in one instruction, with the weights as stored.
// Its other operand, x, must be bf16 too, so each row of x is split into hi = bf16(x) and
// lo = bf16(x - hi): hi + lo carries 16 significant bits, |x - hi - lo| <= 2^-16 |x| per
// element, and every weight meets both parts (two vdpbf16ps per 32 weights).
// Only single tokens (decode) take this path. With T tokens a tile widens its weights once and
// issues 2T FMAs on two ports, against 2T vdpbf16ps on one port here, so from two tokens on
// widening wins (128-token prefill: 76 against 40 GOP/s on one core). Transposed matrices
// (GPT-2 Conv1D) keep the widening kernel too: their pairs would run along rows.
#include <immintrin.h>

// GCC 12 flags the deliberately undefined temporaries inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning group, unknown to clang
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstdint>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/x86/avx512_util.h"
#include "kernels/cpu/x86/tiling.h"

namespace qllm::x86 {
namespace {

// x [n_tok, n_in] as hi and lo halves, bf16, each row zero-padded to `stride` (a multiple of 32):
// hi [n_tok, stride], lo [n_tok, stride].
void split_bf16(const float* x, int64_t n_tok, int64_t n_in, int64_t stride, uint16_t* hi, uint16_t* lo) {
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < stride; i += 32) {
      const __m512 x0 = _mm512_maskz_loadu_ps(mask16(n_in - i), x + t * n_in + i);
      const __m512 x1 = _mm512_maskz_loadu_ps(mask16(n_in - i - 16), x + t * n_in + i + 16);
      const __m512bh h = _mm512_cvtne2ps_pbh(x1, x0);
      // hi back in f32: bf16 is the upper half of an f32.
      const __m512i hb = reinterpret_cast<const __m512i&>(h);
      const __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hb)), 16));
      const __m512 h1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hb, 1)), 16));
      const __m512bh l = _mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0));
      _mm512_storeu_si512(hi + t * stride + i, hb);
      _mm512_storeu_si512(lo + t * stride + i, reinterpret_cast<const __m512i&>(l));
    }
}

struct Bf16DotKernel {
  static constexpr int64_t kActBytes = 4;  // bf16 hi and lo
  const QTensor& w;
  const uint16_t* hi;  // [n_tok, stride]
  const uint16_t* lo;
  int64_t stride;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in;
    const auto* base = reinterpret_cast<const uint16_t*>(w.data) + o * n_in;
    const RowPrefetch<R> prefetch(base, n_in * 2);
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n_in; i += 32) {
      const __mmask32 m = mask32(n_in - i);
      __m512bh wv[R];
      prefetch.at(i * 2);
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        const __m512i v = _mm512_maskz_loadu_epi16(m, base + r * n_in + i);
        wv[r] = reinterpret_cast<const __m512bh&>(v);
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m512i h = _mm512_loadu_si512(hi + (t0 + t) * stride + i);
        const __m512i l = _mm512_loadu_si512(lo + (t0 + t) * stride + i);
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], reinterpret_cast<const __m512bh&>(h));
          acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], reinterpret_cast<const __m512bh&>(l));
        }
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = hsum(acc[r][t]);
  }
};

RowsFn g_widening = nullptr;  // the table's kernel before this one: transposed matrices

void rows_bf16_dot(const QTensor& w, const float* x, const QuantizedActs& a, int64_t n_tok, float* y,
                   int64_t ob, int64_t oe) {
  if (w.transposed || n_tok > 1) return g_widening(w, x, a, n_tok, y, ob, oe);
  // Each thread splits x itself: n_in conversions against n_in * (oe - ob) products, and no
  // shared buffer to hand over.
  thread_local std::vector<uint16_t> hi, lo;
  const int64_t stride = (w.n_in + 31) / 32 * 32;
  const auto n = static_cast<std::size_t>(n_tok * stride);
  if (hi.size() < n) {
    hi.resize(n);
    lo.resize(n);
  }
  split_bf16(x, n_tok, w.n_in, stride, hi.data(), lo.data());
  const Bf16DotKernel k{w, hi.data(), lo.data(), stride, y};
  tile_rows<4, 1>(k, n_tok, ob, oe);
}

}  // namespace

void fill_avx512_bf16(KernelTable* t) {
  g_widening = t->rows[static_cast<int>(QType::BF16)];
  t->rows[static_cast<int>(QType::BF16)] = rows_bf16_dot;
  t->bf16_dot = true;
}

}  // namespace qllm::x86
