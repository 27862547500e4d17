// AVX2 kernels (AVX2 + FMA + F16C) for x86-64 CPUs without AVX-512; same tiling and the same
// int8 activations as the AVX-512 kernels. Their fine-activation kernels (decode, short
// prompts; dispatch.h) keep x in f32.
//
// Integer dot products use `vpmaddubsw` (u8 x s8 -> pairs summed to s16) then `vpmaddwd`
// with ones (-> int32). int8 weights use the sign trick: |w| (u8, <= 128) times x_q with w's
// sign (s8); a pair is at most 2 * 128 * 127 < 2^15, so nothing saturates. int4/int2 weights
// are unsigned already. Row tails shorter than a vector are copied into zero-padded buffers
// (int8, float8) or finished in scalar code (float types).
#include <immintrin.h>

#include <cstring>

#include "format/convert.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/prepare.h"
#include "kernels/cpu/x86/tiling.h"

namespace qllm::x86 {
namespace {

#define QLLM_UNROLL _Pragma("GCC unroll 16")

inline float hsum(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
}
inline float hmax(__m256 v) {
  __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s4 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_max_ss(s4, _mm_movehdup_ps(s4)));
}
inline int hsum_epi32(__m256i v) {
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  return _mm_cvtsi128_si32(s4);
}

// u8 x s8 dot products of 32 bytes, 4 per int32 lane (8 lanes).
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// ---- activation quantization (matches quantize_acts_scalar) ----

void quantize_acts(const float* x, int64_t n_tok, int64_t n_in, int64_t stride, int8_t* q,
                   float* lane_scale, float* offset) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    int8_t* qt = q + t * stride;
    float* lt = lane_scale + t * (stride / 4);
    double off = 0.0;
    for (int64_t b = 0; b < stride; b += 32) {
      alignas(32) float buf[32] = {};
      const int64_t n = n_in - b >= 32 ? 32 : n_in - b > 0 ? n_in - b : 0;
      const float* src = xt + b;
      if (n < 32) {
        if (n > 0) std::memcpy(buf, xt + b, n * sizeof(float));
        src = buf;
      }
      __m256 v[4], m = _mm256_setzero_ps();
      QLLM_UNROLL for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(src + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
      }
      const float amax = hmax(m);
      const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
      __m256i i[4];
      QLLM_UNROLL for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(id)));
      const int sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3])));
      // Pack 32 int32 -> 32 int8 (packs interleave 128-bit lanes; the permute restores order).
      const __m256i p01 = _mm256_packs_epi32(i[0], i[1]), p23 = _mm256_packs_epi32(i[2], i[3]);
      const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23),
                                                    _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qt + b), p);
      _mm256_storeu_ps(lt + b / 4, _mm256_set1_ps(d));
      off += static_cast<double>(d) * sum;
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
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    auto step = [&](int64_t c, const __m256i* wv) {
      __m256i wabs[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wabs[r] = _mm256_abs_epi8(wv[r]);
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (t0 + t) * a.stride + c));
        const __m256 dl = _mm256_loadu_ps(a.lane_scale + (t0 + t) * ls_stride + c / 4);
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          const __m256i s = dot_u8s8(wabs[r], _mm256_sign_epi8(xq, wv[r]));
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), dl, acc[r][t]);
        }
      }
    };
    int64_t c = 0;
    for (; c + 32 <= n_in; c += 32) {
      __m256i wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + r * n_in + c));
      step(c, wv);
    }
    if (c < n_in) {
      alignas(32) int8_t buf[R][32] = {};
      __m256i wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        std::memcpy(buf[r], base + r * n_in + c, n_in - c);
        wv[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(buf[r]));
      }
      step(c, wv);
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = w.scale[o + r] * hsum(acc[r][t]);
  }
};

void rows_int8(const QTensor& w, const float*, const QuantizedActs& a, int64_t n_tok, float* y,
               int64_t ob, int64_t oe) {
  const Int8Kernel k{w, a, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

// ---- int4 / int2, RowChunked layout (prepare.h): 32 weights per step ----

// Weights [32 * k, 32 * k + 32) of a chunk (full: 64 weights, k = 0 or 1; half: 32, k = 0).
template <int Bits>
inline __m256i expand32(const uint8_t* chunk, bool full, int k) {
  if constexpr (Bits == 4) {
    if (full) {  // byte j: q[j] low nibble, q[32 + j] high nibble
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk));
      return _mm256_and_si256(k ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk));  // q[j], q[16 + j]
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
  } else {
    if (full) {  // byte j (16 bytes): fields q[j], q[16 + j], q[32 + j], q[48 + j]
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk));
      const __m256i b = _mm256_broadcastsi128_si256(v);
      const __m256i sh = k ? _mm256_setr_epi64x(4, 4, 6, 6) : _mm256_setr_epi64x(0, 0, 2, 2);
      return _mm256_and_si256(_mm256_srlv_epi64(b, sh), _mm256_set1_epi8(0x03));
    }
    int64_t bytes;  // 8 bytes: fields q[j], q[8 + j], q[16 + j], q[24 + j]
    std::memcpy(&bytes, chunk, 8);
    const __m256i b = _mm256_set1_epi64x(bytes);
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 2, 4, 6)), _mm256_set1_epi8(0x03));
  }
}

template <int Bits>
struct BitsKernel {
  static constexpr int64_t kActBytes = 2;  // int8 q and a lane scale per 4
  const QTensor& w;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t gpr = geo.groups_per_row, gp = geo.group_padded;
    const int64_t rb = geo.row_bytes, ls_stride = a.stride / 4;
    const auto* base = reinterpret_cast<const uint8_t*>(w.data) + o * rb;
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < gpr; ++g) {
      const uint8_t* gw = base + g * gp * Bits / 8;
      const int64_t x0 = g * gp;
      __m256 gacc[R][T];
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) gacc[r][t] = _mm256_setzero_ps();
      for (int64_t j = 0; j < gp; j += 32) {
        const int64_t c = j / 64;
        const bool full = c * 64 + 64 <= gp;
        const int k = static_cast<int>((j / 32) % 2);
        __m256i wv[R];
        QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = expand32<Bits>(gw + r * rb + c * 64 * Bits / 8, full, k);
        QLLM_UNROLL for (int t = 0; t < T; ++t) {
          const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (t0 + t) * a.stride + x0 + j));
          const __m256 dl = _mm256_loadu_ps(a.lane_scale + (t0 + t) * ls_stride + (x0 + j) / 4);
          QLLM_UNROLL for (int r = 0; r < R; ++r)
            gacc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(wv[r], xq)), dl, gacc[r][t]);
        }
      }
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        const __m256 s = _mm256_set1_ps(w.scale[(o + r) * gpr + g]);
        QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(gacc[r][t], s, acc[r][t]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = hsum(acc[r][t]) - shift_term(w, a, o + r, t0 + t);
  }
};

template <int Bits>
void rows_bits(const QTensor& w, const float*, const QuantizedActs& a, int64_t n_tok, float* y,
               int64_t ob, int64_t oe) {
  const ChunkGeometry geo = chunk_geometry(w);
  const BitsKernel<Bits> k{w, a, geo, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

// ---- f32 activations (decode, short prompts; dispatch.h) ----
// Weights are widened to f32 in registers and FMA'd with x; scales are applied once per row
// (int8) or per group (int4/int2), so the error is that of f32 sums alone.

inline __m256 load_i8x8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

struct Int8F32Kernel {
  static constexpr int64_t kActBytes = 4;  // f32 x
  const QTensor& w;
  const float* x;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in, n_vec = n_in / 8 * 8;
    const auto* base = reinterpret_cast<const int8_t*>(w.data) + o * n_in;
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_vec; i += 8) {
      __m256 wv[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r) wv[r] = load_i8x8(base + r * n_in + i);
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_loadu_ps(x + (t0 + t) * n_in + i);
        QLLM_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) {
      float s = hsum(acc[r][t]);
      for (int64_t i = n_vec; i < n_in; ++i) s += static_cast<float>(base[r * n_in + i]) * x[(t0 + t) * n_in + i];
      y[(t0 + t) * w.n_out + o + r] = w.scale[o + r] * s;
    }
  }
};

void rows_int8_f32(const QTensor& w, const float* x, const QuantizedActs&, int64_t n_tok, float* y,
                   int64_t ob, int64_t oe) {
  const Int8F32Kernel k{w, x, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

// int4/int2 in RowChunked layout: a chunk's byte k, bit field f holds weight f * nb + k
// (prepare.h), so 8 bytes zero-extended to int32 lanes give, field by field, 8 consecutive
// weights (every chunk has a multiple of 8 bytes). x of group g starts at g * G; weights past
// G (padding of a single ragged group) meet x loaded under a mask as 0.
template <int Bits>
struct BitsF32Kernel {
  static constexpr int64_t kActBytes = 4;  // f32 x
  const QTensor& w;
  const float* x;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    constexpr int kFields = 8 / Bits;
    const int64_t gpr = geo.groups_per_row, gp = geo.group_padded, gs = geo.group_size, n_in = w.n_in;
    const int64_t rb = geo.row_bytes;
    const auto* base = reinterpret_cast<const uint8_t*>(w.data) + o * rb;
    const __m256i mask = _mm256_set1_epi32((1 << Bits) - 1);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < gpr; ++g) {
      const uint8_t* gw = base + g * gp * Bits / 8;
      const float* xg = x + g * gs;
      __m256 gacc[R][T];
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) gacc[r][t] = _mm256_setzero_ps();
      for (int64_t c = 0; c < gp; c += 64) {
        const int64_t nb = (gp - c >= 64 ? 64 : 32) * Bits / 8;  // bytes of this chunk
        const uint8_t* cw = gw + c * Bits / 8;
        for (int64_t kb = 0; kb < nb; kb += 8) {
          __m256i v[R];
          QLLM_UNROLL for (int r = 0; r < R; ++r)
            v[r] = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cw + r * rb + kb)));
          QLLM_UNROLL for (int f = 0; f < kFields; ++f) {
            const int64_t j = c + f * nb + kb;  // weight index within the group
            const bool whole = j + 8 <= gs;
            const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(gs - j)), lane);
            __m256 wv[R];
            QLLM_UNROLL for (int r = 0; r < R; ++r) {
              const __m256i q = f == 0 ? _mm256_and_si256(v[r], mask)
                                       : _mm256_and_si256(_mm256_srli_epi32(v[r], f * Bits), mask);
              wv[r] = _mm256_cvtepi32_ps(q);
            }
            QLLM_UNROLL for (int t = 0; t < T; ++t) {
              const float* xp = xg + (t0 + t) * n_in + j;
              const __m256 xv = whole ? _mm256_loadu_ps(xp) : _mm256_maskload_ps(xp, m);
              QLLM_UNROLL for (int r = 0; r < R; ++r) gacc[r][t] = _mm256_fmadd_ps(wv[r], xv, gacc[r][t]);
            }
          }
        }
      }
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        const __m256 s = _mm256_set1_ps(w.scale[(o + r) * gpr + g]);
        QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(gacc[r][t], s, acc[r][t]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = hsum(acc[r][t]) - shift_term(w, a, o + r, t0 + t);
  }
};

template <int Bits>
void rows_bits_f32(const QTensor& w, const float* x, const QuantizedActs& a, int64_t n_tok, float* y,
                   int64_t ob, int64_t oe) {
  const ChunkGeometry geo = chunk_geometry(w);
  const BitsF32Kernel<Bits> k{w, x, a, geo, y};
  if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

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
    for (int64_t i = 0; i < n_vec; i += 8) {
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

template <QType Q>
void rows_float(const QTensor& w, const float* x, const QuantizedActs&, int64_t n_tok, float* y,
                int64_t ob, int64_t oe) {
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
  set(QType::QFloat8, rows_float8, false);
  t->rows_fine[static_cast<int>(QType::QInt8)] = rows_int8_f32;
  t->rows_fine[static_cast<int>(QType::QInt4)] = rows_bits_f32<4>;
  t->rows_fine[static_cast<int>(QType::QInt2)] = rows_bits_f32<2>;
}

}  // namespace qllm::x86
