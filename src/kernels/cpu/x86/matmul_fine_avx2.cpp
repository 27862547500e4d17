// AVX2 fine-activation kernels for int8/int4/int2 (dispatch.h), the AVX2 twin of
// matmul_fine_avx512.cpp.
//
// Activations are rounded to int16 per block of act16_block(w) (quantize_acts16) and multiplied
// with `vpmaddwd` (s16 x s16, 2 products summed per int32 lane). Weights are widened to int16
// once per tile step and meet every token of the tile. The added error is at most
// absmax/65534 of the block per element. A block never straddles a weight group, so its int32
// sums are scaled once: by d16 of the block times the row scale (int8) or the group scale
// (int4/int2). int32 cannot overflow: a lane sums 2 * block / 16 products of |w| <= 128 and
// |q| <= 32767, below 2^31 for blocks up to 8192.
//
// Why int16 and not int8 activations, even for long prompts: AVX2 has no u8 x s8 instruction
// that accumulates into int32. `vpmaddubsw` then `vpmaddwd` with ones is two multiplies per
// 32 products, the same count as two `vpmaddwd` on int16, so int16 costs no speed and keeps
// the weights' own error. (On AMD Zen 1 both multiplies issue on one pipe at one 256-bit
// instruction per 2 cycles, which bounds every integer kernel here: 8 products per cycle.)
//
// int4/int2 weights use the RowChunked layout (prepare.h). act16_block is non-zero only where
// every chunk of a row is full (64 weights in 32 or 16 bytes), so weight i of a row sits at
// byte i * Bits / 8. 16 bytes zero-extended to 16-bit lanes give, field by field, 16 weights:
// int4 byte k holds weights k (low nibble) and 32 + k of its chunk, int2 byte k (of 16) holds
// 16 f + k in field f. int4 groups of G % 64 == 32 (such as 96) take one int16 block per group
// (fine16_block, Int4GroupBlockKernel); int2 there, and other group sizes, keep f32 activations
// (rows_bits_f32 below).
//
// Variants: R rows x T tokens register tiles (tiling.h), 2 x 4 for prompts (2 x 2 for
// Int4GroupBlockKernel, 9% faster there); for decode 2 x 1 with its rows from two halves of the
// range (tile_rows_split: int8 rows up to 2 KiB, see rows_int8_fine, and int4/int2, where 2 x 1
// of consecutive rows was 4-8% faster than 4 x 1 and 1 x 1 lost 15-20% on Zen 3), and 4 x 1 for
// longer int8 rows.
// Benchmark: bench_matmul --benchmark_filter='(decode|prefill128)/int.*/avx2'.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/prepare.h"
#include "kernels/cpu/x86/avx2_util.h"
#include "kernels/cpu/x86/tiling.h"

namespace qllm::x86 {
namespace {

// ---- int16 activation quantization (same q and d as quantize_acts16_scalar) ----

void quantize_acts16(const float* x, int64_t n_tok, int64_t n_in, int64_t block, int64_t stride,
                     int16_t* q, float* d) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    int16_t* qt = q + t * stride;
    for (int64_t b = 0; b < stride; b += block) {
      __m256 amax = _mm256_setzero_ps();
      for (int64_t i = b; i < b + block; i += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, load8_zero_past(xt, i, n_in)));
      const float a = hmax(amax);
      const __m256 id = _mm256_set1_ps(a > 0.0f ? 32767.0f / a : 0.0f);
      for (int64_t i = b; i < b + block; i += 16) {
        const __m256i lo = _mm256_cvtps_epi32(_mm256_mul_ps(load8_zero_past(xt, i, n_in), id));
        const __m256i hi = _mm256_cvtps_epi32(_mm256_mul_ps(load8_zero_past(xt, i + 8, n_in), id));
        // packs interleaves 128-bit lanes: [lo0 hi0 lo1 hi1] in 64-bit quarters; restore order.
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qt + i), p);
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

  // dot[r][t] += the products of 16 weights of each row (rows[r][0..16)) with q16 from i on.
  // Steps of 16 keep a 2 x 4 tile's live vectors at 12 (8 sums, 2 rows, one token's q16, one
  // product); with steps of 32, and sums that GCC was free to copy (add_in_place, avx2_util.h),
  // it kept most sums on the stack. Prompts: 65 -> 78-86 GOP/s on one Zen 3 core.
  template <int R, int T>
  static void step16(const int8_t* const* rows, const int16_t* const* xt, int64_t i, __m256i (*dot)[T]) {
    __m256i wv[R];
    QLLM_UNROLL for (int r = 0; r < R; ++r)
      wv[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r])));
    QLLM_UNROLL for (int t = 0; t < T; ++t) {
      __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt[t] + i));
      if constexpr (R > 1) asm("" : "+x"(x));  // one load per token, not one per row
      QLLM_UNROLL for (int r = 0; r < R; ++r) dot[r][t] = add_in_place_epi32(dot[r][t], _mm256_madd_epi16(wv[r], x));
    }
  }

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    const int64_t n_in = w.n_in, block = a.block16, n_blocks = a.stride16 / block;
    const auto* base = reinterpret_cast<const int8_t*>(w.data) + o * n_in;
    const int64_t rs = row_step * n_in;  // bytes from one row of the tile to the next
    const RowPrefetch<R> prefetch(base, rs);
    const int16_t* xt[T];
    QLLM_UNROLL for (int t = 0; t < T; ++t) xt[t] = a.q16 + (t0 + t) * a.stride16;
    const int8_t* rows[R];
    // The f32 sums are touched once per block: they live in memory, so that the registers hold
    // the block's int32 sums.
    alignas(32) float acc[R][T][8];  // zeroed by vector stores: `= {}` became a slow rep stosq
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) _mm256_store_ps(acc[r][t], _mm256_setzero_ps());
    for (int64_t b = 0; b < n_blocks; ++b) {
      __m256i dot[R][T];
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) dot[r][t] = _mm256_setzero_si256();
      const int64_t end = std::min((b + 1) * block, n_in);
      int64_t i = b * block;
      for (; i + 64 <= end; i += 64) {
        // Prompts read each tile T times, from L2 after the first: prefetching 16 KiB ahead into
        // L1 there only evicted the token block's activations (prompts +3-8% without, Zen 3).
        if constexpr (T == 1) prefetch.at(i);
        QLLM_UNROLL for (int k = 0; k < 64; k += 16) {
          QLLM_UNROLL for (int r = 0; r < R; ++r) rows[r] = base + r * rs + i + k;
          step16<R, T>(rows, xt, i + k, dot);
        }
      }
      for (; i + 16 <= end; i += 16) {
        QLLM_UNROLL for (int r = 0; r < R; ++r) rows[r] = base + r * rs + i;
        step16<R, T>(rows, xt, i, dot);
      }
      if (i < end) {
        // The last n_in % 16 columns, in scalar code: copying them to a zero-padded buffer
        // took a memcpy call, whose clobbers made GCC keep every sum in memory in the loops above.
        QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) {
          int32_t s = 0;
          for (int64_t k = i; k < end; ++k) s += base[r * rs + k] * xt[t][k];
          dot[r][t] = _mm256_add_epi32(dot[r][t], _mm256_setr_epi32(s, 0, 0, 0, 0, 0, 0, 0));
        }
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const __m256 d = _mm256_set1_ps(a.d16[(t0 + t) * n_blocks + b]);
        QLLM_UNROLL for (int r = 0; r < R; ++r)
          _mm256_store_ps(acc[r][t], _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[r][t]), d, _mm256_load_ps(acc[r][t])));
      }
      asm("" : "+m"(acc));  // keeps acc in memory: GCC would otherwise hold it in registers
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r * row_step] = w.scale[o + r * row_step] * hsum(_mm256_load_ps(acc[r][t]));
  }
};

// ---- int4 / int2, group-wise affine, full chunks ----

template <int Bits>
struct BitsFine16Kernel {
  static constexpr int64_t kActBytes = 2;  // int16 q
  static constexpr int kFields = 8 / Bits;
  static constexpr int64_t kChunkBytes = 64 * Bits / 8;
  const QTensor& w;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;
  int64_t row_step = 1;  // row r of the tile at o is o + r * row_step (tile_rows_split)

  // The chunks of a block (NC = block / 64) are a fixed, unrolled count, so no loop carries the
  // int32 sums (GCC 12 copies a loop-carried accumulator between registers at every step).
  // keep_chain (avx2_util.h) keeps each sum a chain of adds; with it and 2-row decode tiles,
  // decode int4 ran 5-9% faster and int2 17-24% on Zen 1.
  template <int R, int T, int NC>
  void tile_blocks(int64_t o, int64_t t0) const {
    const int64_t gpr = geo.groups_per_row, gp = geo.group_padded, rb = geo.row_bytes;
    const int64_t n_blocks = a.stride16 / (64 * NC);
    const uint8_t* base = reinterpret_cast<const uint8_t*>(w.data) + o * rb;
    const uint8_t* wp = base;  // the block being read
    const int64_t rs = row_step * rb;  // bytes from one row of the tile to the next
    const RowPrefetch<R> prefetch(base, rs);
    const __m256i mask = _mm256_set1_epi16((1 << Bits) - 1);
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    float shift_sum[R][T] = {};
    for (int64_t b = 0, g = 0, in_group = 0; b < n_blocks; ++b, wp += NC * kChunkBytes) {
      __m256i dot[R][T];
      QLLM_UNROLL for (int c = 0; c < NC; ++c) {
        if (const int64_t done = wp - base + c * kChunkBytes; done % 64 == 0) prefetch.at(done);
        // 16 bytes at a time: int4 has two such pieces per chunk, int2 one.
        QLLM_UNROLL for (int k = 0; k < kChunkBytes; k += 16) {
          __m256i v[R];
          QLLM_UNROLL for (int r = 0; r < R; ++r)
            v[r] = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + r * rs + c * kChunkBytes + k)));
          QLLM_UNROLL for (int f = 0; f < kFields; ++f) {
            // Field f of byte k + j is weight f * kChunkBytes + k + j of the chunk.
            const int64_t xi = (b * NC + c) * 64 + f * kChunkBytes + k;
            __m256i wv[R];
            QLLM_UNROLL for (int r = 0; r < R; ++r) {
              const __m256i s = f == 0 ? v[r] : _mm256_srli_epi16(v[r], f * Bits);
              wv[r] = f == kFields - 1 ? s : _mm256_and_si256(s, mask);
            }
            QLLM_UNROLL for (int t = 0; t < T; ++t) {
              const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q16 + (t0 + t) * a.stride16 + xi));
              QLLM_UNROLL for (int r = 0; r < R; ++r) {
                const __m256i p = _mm256_madd_epi16(wv[r], xq);
                dot[r][t] = c == 0 && k == 0 && f == 0 ? p : _mm256_add_epi32(dot[r][t], p);
                keep_chain(dot[r][t]);
              }
            }
          }
        }
      }
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const float d = a.d16[(t0 + t) * n_blocks + b];
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          const __m256 s = _mm256_set1_ps(w.scale[(o + r * row_step) * gpr + g] * d);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[r][t]), s, acc[r][t]);
        }
      }
      if ((in_group += 64 * NC) == gp) {
        add_shift_terms(w, a, gpr, o, t0, g, shift_sum, row_step);
        in_group = 0, ++g;
      }
    }
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t)
      y[(t0 + t) * w.n_out + o + r * row_step] = hsum(acc[r][t]) - shift_sum[r][t];
  }

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    if (a.block16 == 128) tile_blocks<R, T, 2>(o, t0);
    else tile_blocks<R, T, 1>(o, t0);  // block 64 (act16_block)
  }
};

// ---- int4 with int16 activations per group (fine16_block: G % 64 == 32, such as 96) ----
// A group is 64-weight chunks and one 32-weight chunk, and its activations are one int16 block,
// so its int32 sums are scaled once. In a 64-weight chunk byte k holds weights k and 32 + k; in
// a 32-weight chunk, k and 16 + k.
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
    const __m256i mask = _mm256_set1_epi16(15);
    __m256 acc[R][T];
    QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    float shift_sum[R][T] = {};
    __m256i dot[R][T];
    // dot += the products of 16 bytes at `wp` of each row: low nibbles with q16 from xi, high
    // ones with q16 from xi + high.
    auto piece = [&](const uint8_t* wp, int64_t xi, int64_t high) {
      __m256i v[R];
      QLLM_UNROLL for (int r = 0; r < R; ++r)
        v[r] = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + r * rb)));
      QLLM_UNROLL for (int f = 0; f < 2; ++f) {
        QLLM_UNROLL for (int t = 0; t < T; ++t) {
          const __m256i xq = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(a.q16 + (t0 + t) * a.stride16 + xi + f * high));
          QLLM_UNROLL for (int r = 0; r < R; ++r) {
            const __m256i wv = f == 0 ? _mm256_and_si256(v[r], mask) : _mm256_srli_epi16(v[r], 4);
            dot[r][t] = _mm256_add_epi32(dot[r][t], _mm256_madd_epi16(wv, xq));
            keep_chain(dot[r][t]);
          }
        }
      }
    };
    for (int64_t g = 0; g < gpr; ++g) {
      QLLM_UNROLL for (int r = 0; r < R; ++r) QLLM_UNROLL for (int t = 0; t < T; ++t) dot[r][t] = _mm256_setzero_si256();
      const uint8_t* gw = base + g * gs / 2;
      int64_t c = 0;
      for (; c + 64 <= gs; c += 64) {
        prefetch.at(g * gs / 2 + c / 2);
        piece(gw + c / 2, g * gs + c, 32);
        piece(gw + c / 2 + 16, g * gs + c + 16, 32);
      }
      piece(gw + c / 2, g * gs + c, 16);  // the 32-weight chunk
      QLLM_UNROLL for (int t = 0; t < T; ++t) {
        const float d = a.d16[(t0 + t) * gpr + g];
        QLLM_UNROLL for (int r = 0; r < R; ++r) {
          const __m256 s = _mm256_set1_ps(w.scale[(o + r) * gpr + g] * d);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[r][t]), s, acc[r][t]);
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
    float shift_sum[R][T] = {};
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

void rows_int8_fine(const QTensor& w, const float* x, const QuantizedActs& a, int64_t n_tok, float* y,
                    int64_t ob, int64_t oe) {
  const Int8Fine16Kernel k{w, a, y};
  // Decode over rows of up to 2 KiB: 2-row tiles from two halves of the range
  // (tile_rows_split), two sequential streams. Tiles of consecutive rows read 2-4 streams 1-2 KiB
  // apart, which the prefetchers followed poorly: they beat one row per tile from cache but lost
  // to it from DRAM. Split, 4864x896 on 2 Zen 3 threads read 33-41 GB/s from cache (one row per
  // tile: 23-25) and 16-21 from DRAM (13-18); whole-model decode in bench/README. 896x4864
  // (4.75 KiB rows) streams well as 4 consecutive rows.
  if (n_tok == 1 && w.n_in <= 2048) tile_rows_split<2>(k, w.n_in, ob, oe);
  else if (n_tok == 1) tile_rows<4, 1>(k, n_tok, ob, oe);
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

template <int Bits>
void rows_bits_fine(const QTensor& w, const float* x, const QuantizedActs& a, int64_t n_tok, float* y,
                    int64_t ob, int64_t oe) {
  if (a.q16 == nullptr) return rows_bits_f32<Bits>(w, x, a, n_tok, y, ob, oe);
  const ChunkGeometry geo = chunk_geometry(w);
  if constexpr (Bits == 4) {
    if (a.block16 % 64 == 32) {
      const Int4GroupBlockKernel k{w, a, geo, y};
      if (n_tok == 1) tile_rows<2, 1>(k, n_tok, ob, oe);
      else tile_rows<2, 2>(k, n_tok, ob, oe);
      return;
    }
  }
  const BitsFine16Kernel<Bits> k{w, a, geo, y};
  if (n_tok == 1) tile_rows_split<2>(k, geo.row_bytes, ob, oe);  // as rows_int8_fine
  else tile_rows<2, 4>(k, n_tok, ob, oe);
}

}  // namespace

void fill_avx2_fine(KernelTable* t) {
  t->quantize_acts16 = quantize_acts16;
  t->rows_fine[static_cast<int>(QType::QInt8)] = rows_int8_fine;
  t->rows_fine[static_cast<int>(QType::QInt4)] = rows_bits_fine<4>;
  t->rows_fine[static_cast<int>(QType::QInt2)] = rows_bits_fine<2>;
  t->fine16_group_blocks[static_cast<int>(QType::QInt4)] = true;
}

}  // namespace qllm::x86
