// AVX-512 fine-activation kernels for int8/int4/int2 (dispatch.h: decode and short prompts).
//
// Activations are rounded to int16 per block of act16_block(w) (quantize_acts16) and multiplied with
// `vpdpwssd` (s16 x s16, 2 products summed per int32 lane): widening a weight to int16 is one
// instruction per 32 weights, where widening to f32 costs two per 16, which made the f32 form
// compute-bound at about 60% of the memory bandwidth. The added error is at most absmax/65534
// of the block per element. A block never straddles a weight group (act16_block), so its int32
// sums are scaled once: by d16 of the block, times the row scale (int8) or the group scale
// (int4/int2). int32 cannot overflow: per block a lane sums at most 16 products of |w| <= 128
// (int8) or 64 of |w| <= 15 (int4/int2) and |q| <= 32767.
//
// int4/int2 weights with an int16 block are in the Interleaved16 layout (prepare.h), whose
// chunks are all full. Other group sizes stay RowChunked: int4 groups of G % 64 == 32 (such as
// 96) take one int16 block per group (fine16_block, Int4GroupBlockKernel); int2 there, and
// other sizes, keep f32 activations (rows_bits_f32).
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

// ---- int16 activation quantization (same q and d as quantize_acts16_scalar) ----

void quantize_acts16(const float* x, int64_t n_tok, int64_t n_in, int64_t block, int64_t stride,
                     int16_t* q, float* d) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    int16_t* qt = q + t * stride;
    for (int64_t b = 0; b < stride; b += block) {
      __m512 amax = _mm512_setzero_ps();
      for (int64_t i = b; i < b + block; i += 16)
        amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask16(n_in - i), xt + i)));
      const float a = hmax(amax);
      const __m512 id = _mm512_set1_ps(a > 0.0f ? 32767.0f / a : 0.0f);
      for (int64_t i = b; i < b + block; i += 16) {
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask16(n_in - i), xt + i), id);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qt + i), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(v)));
      }
      d[t * (stride / block) + b / block] = a / 32767.0f;
    }
  }
}

// ---- int8, per-row scale ----

struct Int8Fine16Kernel {
  static constexpr int64_t kActBytes = 2;  // int16 q
  const QTensor& w;
  const QuantizedActs& a;
  float* y;
  int64_t row_step = 1;  // row r of the tile at o is o + r * row_step (tile_rows_split)

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in, block = a.block16, n_blocks = a.stride16 / block;
    const auto* base = reinterpret_cast<const int8_t*>(w.data) + o * n_in;
    const int64_t rs = row_step * n_in;  // bytes from one row of the tile to the next
    const RowPrefetch<R> prefetch(base, rs);
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      __m512i dot[R][T];
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) dot[r][t] = _mm512_setzero_si512();
      const int64_t end = (b + 1) * block < n_in ? (b + 1) * block : n_in;
      for (int64_t i = b * block; i < end; i += 32) {
        // Weights past n_in load as 0; q16 is zero there too.
        const __mmask32 m = mask32(n_in - i);
        if (i % 64 == 0) prefetch.at(i);
        __m512i wv[R];
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          wv[r] = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, base + r * rs + i));
        }
        QLLM_UNROLL for (int t = 0; t < T; ++t) {
          const __m512i xq = _mm512_loadu_si512(a.q16 + (t0 + t) * a.stride16 + i);
          QLLM_UNROLL for (int r = 0; r < R; ++r) dot[r][t] = _mm512_dpwssd_epi32(dot[r][t], wv[r], xq);
        }
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m512 d = _mm512_set1_ps(a.d16[(t0 + t) * n_blocks + b]);
        QLLM_UNROLL for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][t]), d, acc[r][t]);
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r * row_step] = w.scale[o + r * row_step] * hsum(acc[r][t]);
  }
};

// ---- int4 / int2, group-wise affine, Interleaved16 layout (prepare.h) ----

// 16 rows per vector, as the int8-activation BitsKernel (matmul_avx512.cpp). vpdpwssd takes
// int16 pairs: a field's 4 weights per row, zero-extended by unpacklo/unpackhi, give lanes
// (row 4q: w0 w1 | w2 w3, row 4q+1: ...) and (row 4q+2, 4q+3) in 128-bit lane q, which meet
// the row's 4 int16 activations broadcast as 64 bits. At the end of a block one shuffle pair
// adds the two lanes of each row, leaving row l in lane l.
template <int Bits>
struct BitsFine16Kernel {
  static constexpr int64_t kActBytes = 2;  // int16 q
  static constexpr int kFields = 8 / Bits;
  static constexpr int64_t kChunkBytes = 64 * Bits / 8;  // per row: nb
  const QTensor& w;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;

  template <int R, int T>  // R == 16
  void tile(int64_t o, int64_t t0) const {
    // Decode: one pair of sums per field, so that no pair takes more than one vpdpwssd (latency
    // 5) per 64 bytes of weights.
    constexpr int kChains = T == 1 ? kFields : 1;
    const int64_t gpr = geo.groups_per_row, block = a.block16, n_blocks = a.stride16 / block;
    const int64_t blocks_per_group = geo.group_padded / block;
    const uint8_t* wp = reinterpret_cast<const uint8_t*>(w.data) + o * geo.row_bytes;
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc[T];
    QLLM_UNROLL for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0, i = 0, b = 0; g < gpr; ++g) {  // i: first weight of block b
      const __m512 scale = tile_group_values(w.scale.data(), o, gpr, g, w.n_out);
      for (int64_t bg = 0; bg < blocks_per_group; ++bg, ++b) {
        __m512i lo[kChains][T], hi[kChains][T];  // rows 4q, 4q+1 and 4q+2, 4q+3 of 128-bit lane q
        QLLM_UNROLL for (int k = 0; k < kChains; ++k) QLLM_UNROLL for (int t = 0; t < T; ++t) lo[k][t] = hi[k][t] = zero;
        for (int64_t c = 0; c < block; c += 64, i += 64) {
          QLLM_UNROLL for (int m = 0; m < kChunkBytes / 4; ++m, wp += 64) {
            prefetch_ahead(wp);
            const __m512i v = _mm512_loadu_si512(wp);
            QLLM_UNROLL for (int f = 0; f < kFields; ++f) {
              const __m512i wf = tile_field<Bits>(v, f);
              const __m512i wlo = _mm512_unpacklo_epi8(wf, zero), whi = _mm512_unpackhi_epi8(wf, zero);
              const int kc = f % kChains;
              QLLM_UNROLL for (int t = 0; t < T; ++t) {
                int64_t x4;
                std::memcpy(&x4, a.q16 + (t0 + t) * a.stride16 + i + f * kChunkBytes + 4 * m, 8);
                const __m512i xb = _mm512_set1_epi64(x4);
                lo[kc][t] = _mm512_dpwssd_epi32(lo[kc][t], wlo, xb);
                hi[kc][t] = _mm512_dpwssd_epi32(hi[kc][t], whi, xb);
              }
            }
          }
        }
        QLLM_UNROLL for (int k = 1; k < kChains; ++k) QLLM_UNROLL for (int t = 0; t < T; ++t) {
          lo[0][t] = _mm512_add_epi32(lo[0][t], lo[k][t]);
          hi[0][t] = _mm512_add_epi32(hi[0][t], hi[k][t]);
        }
        QLLM_UNROLL for (int t = 0; t < T; ++t) {
          const __m512 l = _mm512_castsi512_ps(lo[0][t]), h = _mm512_castsi512_ps(hi[0][t]);
          const __m512i dot = _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(l, h, _MM_SHUFFLE(2, 0, 2, 0))),
                                               _mm512_castps_si512(_mm512_shuffle_ps(l, h, _MM_SHUFFLE(3, 1, 3, 1))));
          const float d = a.d16[(t0 + t) * n_blocks + b];
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, _mm512_set1_ps(d)), acc[t]);
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

// ---- int4 with int16 activations per group (fine16_block: G % 64 == 32, such as 96) ----
// RowChunked, as the AVX2 kernel of the same name: a group is 64-weight chunks (byte k holds
// weights k and 32 + k) and one 32-weight chunk (k and 16 + k), and its activations are one
// int16 block, so its int32 sums are scaled once. A 64-weight chunk's 32 bytes widened to
// int16 give weights 0-31 (low nibbles) and 32-63 (high); the 32-weight chunk's 16 bytes,
// loaded into both halves and shifted by 0 or 4 per half, give its weights in order.
struct Int4GroupBlockKernel {
  static constexpr int64_t kActBytes = 2;  // int16 q
  const QTensor& w;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t gpr = geo.groups_per_row, gs = geo.group_size, rb = geo.row_bytes;
    const uint8_t* base = reinterpret_cast<const uint8_t*>(w.data) + o * rb;
    const RowPrefetch<R> prefetch(base, rb);
    const __m512i mask = _mm512_set1_epi16(15);
    const __m512i half_shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    float shift_sum[R][T] = {};
    for (int64_t g = 0; g < gpr; ++g) {
      __m512i dot[R][T];
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) dot[r][t] = _mm512_setzero_si512();
      const uint8_t* gw = base + g * gs / 2;
      const int16_t* xg = a.q16 + t0 * a.stride16 + g * gs;
      int64_t c = 0;
      for (; c + 64 <= gs; c += 64) {
        __m512i v[R];
        prefetch.at(g * gs / 2 + c / 2);
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          v[r] = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(gw + c / 2 + r * rb)));
        }
        QLLM_UNROLL for (int f = 0; f < 2; ++f) {
          QLLM_UNROLL for (int t = 0; t < T; ++t) {
            const __m512i xq = _mm512_loadu_si512(xg + t * a.stride16 + c + 32 * f);
            QLLM_UNROLL for (int r = 0; r < R; ++r) {
              const __m512i wv = f == 0 ? _mm512_and_si512(v[r], mask) : _mm512_srli_epi16(v[r], 4);
              dot[r][t] = _mm512_dpwssd_epi32(dot[r][t], wv, xq);
            }
          }
        }
      }
      __m512i v[R];  // the 32-weight chunk
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(gw + c / 2 + r * rb));
        v[r] = _mm512_and_si512(_mm512_srlv_epi16(_mm512_cvtepu8_epi16(_mm256_broadcastsi128_si256(b)), half_shift), mask);
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m512i xq = _mm512_loadu_si512(xg + t * a.stride16 + c);
        QLLM_UNROLL for (int r = 0; r < R; ++r) dot[r][t] = _mm512_dpwssd_epi32(dot[r][t], v[r], xq);
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const float d = a.d16[(t0 + t) * gpr + g];
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          const __m512 s = _mm512_set1_ps(w.scale[(o + r) * gpr + g] * d);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][t]), s, acc[r][t]);
        }
      }
      add_shift_terms(w, a, gpr, o, t0, g, shift_sum);
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = hsum(acc[r][t]) - shift_sum[r][t];
  }
};

// ---- f32 activations, for the group sizes act16_block() does not take ----
// Weights are widened to f32 in registers and FMA'd with x; scales are applied once per group,
// so the error is that of f32 sums alone.

// int4/int2 in RowChunked layout: a chunk's byte k, bit field f holds weight f * nb + k
// (prepare.h), so 16 bytes zero-extended to int32 lanes give, field by field, 16 consecutive
// weights. int2 half chunks have 8 bytes: the upper 8 lanes are 0 and their x lanes masked.
// x of group g starts at g * G; weights past G (padding of a single ragged group) meet
// masked-off x.
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
    const __m512i mask = _mm512_set1_epi32((1 << Bits) - 1);
    __m512 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    float shift_sum[R][T] = {};
    for (int64_t g = 0; g < gpr; ++g) {
      const uint8_t* gw = base + g * gp * Bits / 8;
      const float* xg = x + g * gs;
      __m512 gacc[R][T];
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) gacc[r][t] = _mm512_setzero_ps();
      for (int64_t c = 0; c < gp; c += 64) {
        const int64_t nb = (gp - c >= 64 ? 64 : 32) * Bits / 8;  // bytes of this chunk
        const uint8_t* cw = gw + c * Bits / 8;
        for (int64_t kb = 0; kb < nb; kb += 16) {
          __m512i v[R];
          if (nb - kb >= 16) {
            QLLM_UNROLL for (int r = 0; r < R; ++r)
              v[r] = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cw + r * rb + kb)));
          } else {
            QLLM_UNROLL for (int r = 0; r < R; ++r)
              v[r] = _mm512_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cw + r * rb + kb)));
          }
          const int64_t width = nb - kb >= 16 ? 16 : nb - kb;
          QLLM_UNROLL for (int f = 0; f < kFields; ++f) {
            const int64_t j = c + f * nb + kb;  // weight index within the group
            const __mmask16 m = mask16(width < gs - j ? width : gs - j);
            __m512 wv[R];
            QLLM_UNROLL for (int r = 0; r < R; ++r) {
              const __m512i q = f == 0 ? _mm512_and_si512(v[r], mask)
                                       : _mm512_and_si512(_mm512_srli_epi32(v[r], f * Bits), mask);
              wv[r] = _mm512_cvtepi32_ps(q);
            }
            QLLM_UNROLL for (int t = 0; t < T; ++t) {
              const float* xp = xg + (t0 + t) * n_in + j;
              const __m512 xv = m == 0xffff ? _mm512_loadu_ps(xp) : _mm512_maskz_loadu_ps(m, xp);
              QLLM_UNROLL for (int r = 0; r < R; ++r) gacc[r][t] = _mm512_fmadd_ps(wv[r], xv, gacc[r][t]);
            }
          }
        }
      }
      QLLM_UNROLL for (int r = 0; r < R; ++r) {
        const __m512 s = _mm512_set1_ps(w.scale[(o + r) * gpr + g]);
        QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(gacc[r][t], s, acc[r][t]);
      }
      add_shift_terms(w, a, gpr, o, t0, g, shift_sum);
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r] = hsum(acc[r][t]) - shift_sum[r][t];
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


// ---- entry points: int16 activations when matmul() made them (QuantizedActs::q16) ----

void rows_int8_fine(const QTensor& w, const float*, const QuantizedActs& a, int64_t n_tok, float* y,
                    int64_t ob, int64_t oe) {
  const Int8Fine16Kernel k{w, a, y};
  // Decode over rows of up to 2 KiB: 4-row tiles from four parts of the range, four sequential
  // streams (tile_rows_split; the AVX2 twin takes 2). On 2 Xeon threads, from DRAM, 151936x896
  // read 22.8-25.5 GB/s split, 12.9-19.2 as tiles of 4 consecutive rows (bench/README).
  if (n_tok == 1 && w.n_in <= 2048) tile_rows_split<4>(k, w.n_in, ob, oe);
  else if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

// int16 activations exactly where act16_block(w) > 0, which is where the weights are
// Interleaved16 (kernel_layout); other group sizes stay RowChunked with f32 x.
template <int Bits>
void rows_bits_fine(const QTensor& w, const float* x, const QuantizedActs& a, int64_t n_tok, float* y,
                    int64_t ob, int64_t oe) {
  if (a.q16 == nullptr) return rows_bits_f32<Bits>(w, x, a, n_tok, y, ob, oe);
  const ChunkGeometry geo = chunk_geometry(w);
  if constexpr (Bits == 4) {
    if (a.block16 % 64 == 32) {
      const Int4GroupBlockKernel k{w, a, geo, y};
      if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
      else tile_rows<2, 4>(k, n_tok, ob, oe);
      return;
    }
  }
  const BitsFine16Kernel<Bits> k{w, a, geo, y};
  if (n_tok == 1) tile_row_tiles<1>(k, n_tok, ob, oe);
  else tile_row_tiles<4>(k, n_tok, ob, oe);
}

}  // namespace

void fill_avx512_fine(KernelTable* t) {
  t->quantize_acts16 = quantize_acts16;
  t->rows_fine[static_cast<int>(QType::QInt8)] = rows_int8_fine;
  t->rows_fine[static_cast<int>(QType::QInt4)] = rows_bits_fine<4>;
  t->rows_fine[static_cast<int>(QType::QInt2)] = rows_bits_fine<2>;
  t->fine16_group_blocks[static_cast<int>(QType::QInt4)] = true;
}

}  // namespace qllm::x86
