// AVX-512 kernels (F/BW/VL/DQ + VNNI) for every QType. Variants per kernel: R rows x T tokens
// register tiles (tiling.h); decode uses 4 rows x 1 token, prefill 4 rows x 4 tokens (int4 and
// int2: 16 rows, one per lane, x 8 tokens).
// int8/int4/int2 each have an int8-activation kernel (long prefills, here) and a
// fine-activation one (decode, short prompts: matmul_fine_avx512.cpp); matmul() chooses
// (dispatch.h).
//
// Integer kernels use `vpdpbusd` (u8 x s8, 4 products summed per int32 lane). int8 weights take
// activations quantized per block of 32 (dispatch.h) and are made unsigned by flipping the sign
// bit (w + 128); the extra 128 * sum(q_x) per block is the per-token `offset`, subtracted once
// per output; each 64-byte step converts the int32 lanes to float and multiplies by the block
// scale of each lane. int4/int2 weights are unsigned already and take activations per
// act16_block(w), summed in int32 over a whole block, 16 rows per vector (BitsKernel).
#include <immintrin.h>

// GCC 12 flags the deliberately undefined temporaries inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning group, unknown to clang
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstring>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/prepare.h"
#include "kernels/cpu/x86/avx512_util.h"
#include "kernels/cpu/x86/tiling.h"

namespace qllm::x86 {
namespace {

// ---- activation quantization ----

void quantize_acts(const float* x, int64_t n_tok, int64_t n_in, int64_t block, int64_t stride,
                   int8_t* q, float* lane_scale, float* offset) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    int8_t* qt = q + t * stride;
    float* lt = lane_scale + t * (stride / 4);
    double off = 0.0;
    for (int64_t b = 0; b < stride; b += block) {
      __m512 m = _mm512_setzero_ps();
      for (int64_t i = b; i < b + block; i += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask16(n_in - i), xt + i)));
      const float amax = hmax(m);
      const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
      __m512i sum = _mm512_setzero_si512();
      for (int64_t i = b; i < b + block; i += 16) {
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask16(n_in - i), xt + i), _mm512_set1_ps(id)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qt + i), _mm512_cvtsepi32_epi8(v));
        _mm_storeu_ps(lt + i / 4, _mm_set1_ps(d));
        sum = _mm512_add_epi32(sum, v);
      }
      off += static_cast<double>(d) * hsum_epi32(sum);
    }
    offset[t] = static_cast<float>(128.0 * off);
  }
}

// ---- int8, per-row scale ----

struct Int8Kernel {
  static constexpr int64_t kActBytes = 2;  // int8 q and a lane scale per 4
  const QTensor& w;
  const QuantizedActs& a;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in, ls_stride = a.stride / 4;
    const auto* base = reinterpret_cast<const int8_t*>(w.data) + o * n_in;
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    auto step = [&](int64_t c, const __m512i* wv) {
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m512i xq = _mm512_loadu_si512(a.q + (t0 + t) * a.stride + c);
        const __m512 dl = _mm512_loadu_ps(a.lane_scale + (t0 + t) * ls_stride + c / 4);
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], xq);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), dl, acc[r][t]);
        }
      }
    };
    int64_t c = 0;
    for (; c + 64 <= n_in; c += 64) {
      __m512i wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = _mm512_xor_si512(_mm512_loadu_si512(base + r * n_in + c), flip);
      step(c, wv);
    }
    if (c < n_in) {
      // Bytes past n_in load as 0 and become 128, but meet zero padding in q.
      const __mmask64 m = mask64(n_in - c);
      __m512i wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, base + r * n_in + c), flip);
      step(c, wv);
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = w.scale[o + r] * (hsum(acc[r][t]) - a.offset[t0 + t]);
  }
};

void rows_int8(const QTensor& w, const float*, const QuantizedActs& a, int64_t n_tok, float* y,
               int64_t ob, int64_t oe) {
  const Int8Kernel k{w, a, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<4, 4>(k, n_tok, ob, oe);
}

// ---- int4 / int2, group-wise affine, Interleaved16 layout (prepare.h) ----

// A tile is the 16 rows of one 64-byte vector (a lane per row) for T tokens. Activations come
// per act16_block(w) (64 or 128, inside one weight group): vpdpbusd sums a whole block's
// products in int32 lanes against 4 broadcast activations, and each token's block is then
// scaled for all 16 rows with one conversion and one FMA; the shift term is one FMA per group.
// So nearly all the work is vpdpbusd (the RowChunked form, one row per vector, spent as much
// again per row on scaling). Only full chunks occur (act16_block(w) > 0).
template <int Bits>
struct BitsKernel {
  static constexpr int64_t kActBytes = 1;  // int8 q (one lane scale per block is read)
  static constexpr int kFields = 8 / Bits;
  static constexpr int64_t kChunkBytes = 64 * Bits / 8;  // per row: nb
  const QTensor& w;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;

  template <int R, int T>  // R == 16
  void tile(int64_t o, int64_t t0) const {
    const int64_t gpr = geo.groups_per_row, block = a.block8, ls_stride = a.stride / 4;
    const int64_t blocks_per_group = geo.group_padded / block;
    const uint8_t* wp = reinterpret_cast<const uint8_t*>(w.data) + o * geo.row_bytes;
    __m512 acc[T];
    QLLM_UNROLL for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0, i = 0; g < gpr; ++g) {  // i: first weight of the block
      const __m512 scale = tile_group_values(w.scale.data(), o, gpr, g, w.n_out);
      for (int64_t bg = 0; bg < blocks_per_group; ++bg) {
        __m512i dot[T];
        QLLM_UNROLL for (int t = 0; t < T; ++t) dot[t] = _mm512_setzero_si512();
        for (int64_t c = 0; c < block; c += 64, i += 64) {
          QLLM_UNROLL for (int m = 0; m < kChunkBytes / 4; ++m, wp += 64) {
            const __m512i v = _mm512_loadu_si512(wp);
            QLLM_UNROLL for (int f = 0; f < kFields; ++f) {
              const __m512i wf = tile_field<Bits>(v, f);
              QLLM_UNROLL for (int t = 0; t < T; ++t) {
                int32_t x4;
                std::memcpy(&x4, a.q + (t0 + t) * a.stride + i + f * kChunkBytes + 4 * m, 4);
                dot[t] = _mm512_dpbusd_epi32(dot[t], wf, _mm512_set1_epi32(x4));
              }
            }
          }
        }
        QLLM_UNROLL for (int t = 0; t < T; ++t) {
          const float d = a.lane_scale[(t0 + t) * ls_stride + (i - block) / 4];
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t]), _mm512_mul_ps(scale, _mm512_set1_ps(d)), acc[t]);
        }
      }
      const __m512 shift = tile_group_values(w.shift.data(), o, gpr, g, w.n_out);
      QLLM_UNROLL for (int t = 0; t < T; ++t)
        acc[t] = _mm512_fnmadd_ps(shift, _mm512_set1_ps(a.group_sum[(t0 + t) * gpr + g]), acc[t]);
    }
    QLLM_UNROLL for (int t = 0; t < T; ++t)
      _mm512_mask_storeu_ps(y + (t0 + t) * w.n_out + o, mask16(w.n_out - o), acc[t]);
  }
};

template <int Bits>
void rows_bits(const QTensor& w, const float*, const QuantizedActs& a, int64_t n_tok, float* y,
               int64_t ob, int64_t oe) {
  const ChunkGeometry geo = chunk_geometry(w);
  const BitsKernel<Bits> k{w, a, geo, y};
  tile_row_tiles<8>(k, n_tok, ob, oe);
}

// ---- float8 e4m3fn, per-row scale ----
// e4m3fn -> f16 by moving the exponent and mantissa fields into place: f16 bits
// (sign << 15) | (b & 0x7f) << 7 are the fp8 value / 2^8 for normals and subnormals alike
// (the bias differs by 8). The 2^8 goes into the row scale. NaN codes (never written by
// quanto, which saturates) read as +-480.

inline void load_f8x32(const int8_t* p, __mmask32 m, __m512* lo, __m512* hi) {
  __m512i h = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, p));
  h = _mm512_and_si512(_mm512_slli_epi16(h, 7), _mm512_set1_epi16(static_cast<short>(0xbf80)));
  *lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  *hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
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
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n_in; i += 32) {
      if (i % 64 == 0) prefetch.at(i);
      const int64_t rest = n_in - i;
      const __mmask32 m = mask32(rest);
      __m512 lo[R], hi[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) load_f8x32(base + r * n_in + i, m, &lo[r], &hi[r]);
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const float* xt = x + (t0 + t) * n_in + i;
        const __m512 x0 = _mm512_maskz_loadu_ps(mask16(rest), xt);
        const __m512 x1 = _mm512_maskz_loadu_ps(mask16(rest - 16), xt + 16);
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          acc[r][t] = _mm512_fmadd_ps(lo[r], x0, acc[r][t]);
          acc[r][t] = _mm512_fmadd_ps(hi[r], x1, acc[r][t]);
        }
      }
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
inline __m512 load_f16x(const std::byte* base, int64_t index, __mmask16 m) {
  if constexpr (Q == QType::F32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(base) + index);
  } else if constexpr (Q == QType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(base) + index));
  } else {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(base) + index));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
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
    const int64_t n_in = w.n_in;
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    constexpr int64_t kBytes = Q == QType::F32 ? 4 : 2;
    const RowPrefetch<R> prefetch(w.data + o * n_in * kBytes, n_in * kBytes);
    for (int64_t i = 0; i < n_in; i += 16) {
      if (i * kBytes % 64 == 0) prefetch.at(i * kBytes);
      const __mmask16 m = mask16(n_in - i);
      __m512 wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = load_f16x<Q>(w.data, (o + r) * n_in + i, m);
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + (t0 + t) * n_in + i);
        QLLM_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = hsum(acc[r][t]);
  }
};

// Transposed (GPT-2 Conv1D, W stored [n_in, n_out]): y[t, o] = sum_i x[t, i] W[i, o]. A tile is
// NV vectors of 16 outputs for T tokens; rows of W are read as contiguous pieces.
template <QType Q, int NV, int T>
void transposed_tile(const QTensor& w, const float* x, float* y, int64_t o, int64_t o_end, int64_t t0) {
  const int64_t n_in = w.n_in, n_out = w.n_out;
  __mmask16 m[NV];
  QLLM_UNROLL for (int v = 0; v < NV; ++v) m[v] = mask16(o_end - o - 16 * v);
  __m512 acc[NV][T];
  QLLM_UNROLL for (int v = 0; v < NV; ++v) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[v][t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n_in; ++i) {
    __m512 wv[NV];
    QLLM_UNROLL for (int v = 0; v < NV; ++v) wv[v] = load_f16x<Q>(w.data, i * n_out + o + 16 * v, m[v]);
    QLLM_UNROLL for (int t = 0; t < T; ++t) {
      const __m512 xb = _mm512_set1_ps(x[(t0 + t) * n_in + i]);
      QLLM_UNROLL for (int v = 0; v < NV; ++v) acc[v][t] = _mm512_fmadd_ps(wv[v], xb, acc[v][t]);
    }
  }
  QLLM_UNROLL for (int v = 0; v < NV; ++v) QLLM_UNROLL for (int t = 0; t < T; ++t)
    _mm512_mask_storeu_ps(y + (t0 + t) * n_out + o + 16 * v, m[v], acc[v][t]);
}

template <QType Q, int NV, int TMax>
void transposed_rows(const QTensor& w, const float* x, int64_t n_tok, float* y, int64_t ob, int64_t oe) {
  for (int64_t o = ob; o < oe; o += 16 * NV) {
    const int64_t e = o + 16 * NV < oe ? o + 16 * NV : oe;
    int64_t t = 0;
    for (; t + TMax <= n_tok; t += TMax) transposed_tile<Q, NV, TMax>(w, x, y, o, e, t);
    for (; t < n_tok; ++t) transposed_tile<Q, NV, 1>(w, x, y, o, e, t);
  }
}

template <QType Q>
void rows_float(const QTensor& w, const float* x, const QuantizedActs&, int64_t n_tok, float* y,
                int64_t ob, int64_t oe) {
  if (w.transposed) {
    if (n_tok == 1) transposed_rows<Q, 8, 1>(w, x, n_tok, y, ob, oe);
    else transposed_rows<Q, 4, 4>(w, x, n_tok, y, ob, oe);
    return;
  }
  const FloatKernel<Q> k{w, x, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<4, 4>(k, n_tok, ob, oe);
}

}  // namespace

void fill_avx512(KernelTable* t) {
  t->quantize_acts = quantize_acts;
  auto set = [&](QType q, RowsFn fn, bool acts) {
    t->rows[static_cast<int>(q)] = fn;
    t->uses_acts[static_cast<int>(q)] = acts;
  };
  set(QType::F32, rows_float<QType::F32>, false);
  set(QType::F16, rows_float<QType::F16>, false);
  set(QType::BF16, rows_float<QType::BF16>, false);
  set(QType::QInt8, rows_int8, true);
  set(QType::QInt4, rows_bits<4>, true);
  set(QType::QInt2, rows_bits<2>, true);
  t->act8_in_act16_blocks[static_cast<int>(QType::QInt4)] = true;
  t->act8_in_act16_blocks[static_cast<int>(QType::QInt2)] = true;
  t->interleaved16_bits = true;
  set(QType::QFloat8, rows_float8, false);
  fill_avx512_fine(t);
}

}  // namespace qllm::x86
