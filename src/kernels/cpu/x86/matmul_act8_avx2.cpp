// AVX2 int8-activation kernels: int4/int2 weights in prompts of kActQuantMinTokens tokens or
// more (dispatch.h), where the matmul is compute-bound.
//
// `vpmaddubsw` multiplies the unsigned 4-bit (or 2-bit) weights by int8 activations and sums
// pairs into int16 lanes. A pair is at most 2 * 15 * 127 = 3810, so the products of a whole
// block of 128 weights (4 vpmaddubsw per lane) add up in int16 without overflow, and one
// `vpmaddwd` with ones per block widens them to int32. That is 2.5 multiply instructions per 32
// products where a per-32 widening takes 4, and the multiply pipes bound these kernels (on AMD
// Zen 1 one 256-bit multiply issues every 2 cycles, on Zen 3 two per cycle, shared with the
// FMAs that scale each block's sums). It needs one activation scale per block,
// so activations are quantized per act8_block(w) = act16_block(w) (64 or 128, never straddling
// a weight group): the added error is at most absmax/254 of that block per element.
//
// int8 weights have no such kernel here: their products need the sign trick and a widening per
// vpmaddubsw, no faster than the int16 kernel of matmul_fine_avx2.cpp, which keeps the
// weights' own error; so they use that one at every length.
//
// Weights: RowChunked (prepare.h) with full chunks only (act16_block(w) > 0), so weight i of a
// row sits at byte i * Bits / 8. int4: a chunk's 32 bytes hold weights k (low nibbles) and
// 32 + k (high nibbles); int2: its 16 bytes hold weight 16 f + k in field f.
// Variants: 1 row x 8 tokens register tiles (tiling.h): 8 int16 sums, 2 f32 sums of 4 tokens
// each (the fold, in tile_blocks), the shift sums, one expanded half chunk and a product fill 13
// of the 16 registers. On one Zen 3 core, alternating runs, best of 4 (GOP/s): the fold in
// 1 x 8 tiles ran int4 prompts at 136-155 on Qwen2-0.5B's and GPT-2's shapes, 1 x 6 tiles that
// scaled each token's sums on their own at 92-109. Before those, 2 x 4 tiles with the f32 sums
// in memory ran at 82-91 and 1 x 4 with a whole chunk expanded (spilling) at 78-91.
// Benchmark:
//   bench_matmul --benchmark_filter='prefill128/int(4|2)/.*/avx2'
#include <immintrin.h>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/prepare.h"
#include "kernels/cpu/x86/avx2_util.h"
#include "kernels/cpu/x86/tiling.h"

namespace qllm::x86 {
namespace {

// ---- activation quantization (matches quantize_acts_scalar) ----

void quantize_acts(const float* x, int64_t n_tok, int64_t n_in, int64_t block, int64_t stride,
                   int8_t* q, float* lane_scale, float* offset) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    int8_t* qt = q + t * stride;
    float* lt = lane_scale + t * (stride / 4);
    double off = 0.0;
    for (int64_t b = 0; b < stride; b += block) {
      __m256 m = _mm256_setzero_ps();
      for (int64_t i = b; i < b + block; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, load8_zero_past(xt, i, n_in)));
      const float amax = hmax(m);
      const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
      __m256i sum = _mm256_setzero_si256();
      for (int64_t i = b; i < b + block; i += 32) {
        __m256i v[4];
        QLLM_UNROLL for (int k = 0; k < 4; ++k) {
          v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(load8_zero_past(xt, i + 8 * k, n_in), _mm256_set1_ps(id)));
          sum = _mm256_add_epi32(sum, v[k]);
        }
        // Pack 32 int32 -> 32 int8 (packs interleave 128-bit lanes; the permute restores order).
        const __m256i p01 = _mm256_packs_epi32(v[0], v[1]), p23 = _mm256_packs_epi32(v[2], v[3]);
        const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23),
                                                      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qt + i), p);
        _mm256_storeu_ps(lt + i / 4, _mm256_set1_ps(d));
      }
      off += static_cast<double>(d) * hsum_epi32(sum);
    }
    offset[t] = static_cast<float>(128.0 * off);
  }
}

// ---- int4 / int2, group-wise affine ----

// Weights 32 h .. 32 h + 31 of the 64 of row chunk p, as bytes.
template <int Bits>
inline __m256i expand_half8(const uint8_t* p, int h) {
  if constexpr (Bits == 4) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm256_and_si256(h == 0 ? v : _mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
  } else {
    // Field f of byte k is weight 16 f + k: fields 2h and 2h + 1 in the two 128-bit halves.
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i lo = h == 0 ? v : _mm_srli_epi16(v, 4);
    return _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), _mm_srli_epi16(lo, 2), 1), _mm256_set1_epi8(0x03));
  }
}

template <int Bits>
struct BitsAct8Kernel {
  static constexpr int64_t kActBytes = 1;  // int8 q (one lane scale per block is read)
  static constexpr int64_t kChunkBytes = 64 * Bits / 8;
  const QTensor& w;
  const QuantizedActs& a;
  const ChunkGeometry& geo;
  float* y;

  // The chunks of a block (NC = block / 64) are a fixed, unrolled count, so no loop carries the
  // int16 sums.
  template <int R, int T, int NC>
  void tile_blocks(int64_t o, int64_t t0) const {
    static_assert(R == 1, "one row: its T int16 sums and the folds fill the registers");
    constexpr int J = (T + 3) / 4;  // folds of 4 tokens
    const int64_t gpr = geo.groups_per_row, gp = geo.group_padded, rb = geo.row_bytes;
    const int64_t n_blocks = a.stride / (64 * NC), ts = a.token_stride_t, xs = a.stride;
    const uint8_t* wp = reinterpret_cast<const uint8_t*>(w.data) + o * rb;  // the block being read
    const __m256i ones = _mm256_set1_epi16(1);
    // acc[j]: tokens 4j .. 4j + 3 of the tile in lanes 0-3, again in lanes 4-7 (the two 128-bit
    // halves of the row's sums, added at the end).
    __m256 acc[J];
    QLLM_UNROLL for (int j = 0; j < J; ++j) acc[j] = _mm256_setzero_ps();
    // The shift terms (add_shift_terms) of the tile's tokens in the lanes of one vector: a
    // multiply-add per group instead of one per token and group (17% of the kernel's time on
    // Qwen2-0.5B's shapes).
    static_assert(T <= kTokenPad);
    __m256 shift_sum = _mm256_setzero_ps();
    for (int64_t b = 0, g = 0, in_group = 0; b < n_blocks; ++b, wp += NC * kChunkBytes) {
      __m256i sum16[T];  // at most 4 * 3810 per lane (int4, block 128)
      QLLM_UNROLL for (int t = 0; t < T; ++t) sum16[t] = _mm256_setzero_si256();
      // The 64 weights of a chunk in two halves of 32 (expand_half8), each meeting every token
      // of the tile: 2 registers instead of 4, so nothing spills.
      QLLM_UNROLL for (int c = 0; c < NC; ++c) QLLM_UNROLL for (int h = 0; h < 2; ++h) {
        const __m256i wv = expand_half8<Bits>(wp + c * kChunkBytes, h);
        // Tokens 0-3 and 4-7 of the tile from two pointers that GCC may not derive from one
        // another: otherwise it keeps one pointer or offset per token, on the stack, at one more
        // load per vpmaddubsw. Token t is then read at x[t / 4] + (t % 4) * stride.
        const int8_t* x[2] = {a.q + t0 * xs + (b * NC + c) * 64 + h * 32};
        x[1] = x[0] + 4 * xs;
        asm("" : "+r"(x[0]), "+r"(x[1]));
        QLLM_UNROLL for (int t = 0; t < T; ++t) {
          const int8_t* xq = x[t / 4] + (t % 4) * xs;
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
          sum16[t] = add_in_place_epi16(sum16[t], _mm256_maddubs_epi16(wv, xv));
        }
      }
      // Fold 4 tokens' sums into one vector before scaling: pairs of lanes added in int16 (at
      // most 2 * 4 * 3810 < 2^15), widened, and added again, lane k of token t landing in lane
      // t of its 128-bit half. One widening, conversion and FMA per 4 tokens instead of per
      // token: these compete with vpmaddubsw for the multiply pipes.
      const __m256 ws = _mm256_set1_ps(w.scale[o * gpr + g]);
      QLLM_UNROLL for (int j = 0; j < J; ++j) {
        const __m256i zero = _mm256_setzero_si256();
        const auto s = [&](int k) { return 4 * j + k < T ? sum16[4 * j + k] : zero; };
        const __m256i p01 = _mm256_madd_epi16(_mm256_hadd_epi16(s(0), s(1)), ones);
        const __m256i p23 = _mm256_madd_epi16(_mm256_hadd_epi16(s(2), s(3)), ones);
        const __m256 d = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(a.block_scale_t + b * ts + t0 + 4 * j));
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_hadd_epi32(p01, p23)), _mm256_mul_ps(ws, d), acc[j]);
      }
      if ((in_group += 64 * NC) == gp) {
        const __m256 xs = _mm256_loadu_ps(a.group_sum_t + g * ts + t0);
        shift_sum = _mm256_fmadd_ps(_mm256_set1_ps(w.shift[o * gpr + g]), xs, shift_sum);
        in_group = 0, ++g;
      }
    }
    alignas(32) float out[8];
    QLLM_UNROLL for (int j = 0; j < J; ++j) {
      const __m128 shift = j == 0 ? _mm256_castps256_ps128(shift_sum) : _mm256_extractf128_ps(shift_sum, 1);
      const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
      _mm_store_ps(out + 4 * j, _mm_sub_ps(sum, shift));
    }
    QLLM_UNROLL for (int t = 0; t < T; ++t) y[(t0 + t) * w.n_out + o] = out[t];
  }

  template <int R, int T>
  void tile(int64_t o, int64_t t0) const {
    if (a.block8 == 128) tile_blocks<R, T, 2>(o, t0);
    else tile_blocks<R, T, 1>(o, t0);  // block 64 (act16_block)
  }
};

template <int Bits>
void rows_bits(const QTensor& w, const float*, const QuantizedActs& a, int64_t n_tok, float* y,
               int64_t ob, int64_t oe) {
  const ChunkGeometry geo = chunk_geometry(w);
  const BitsAct8Kernel<Bits> k{w, a, geo, y};
  tile_rows<1, 8>(k, n_tok, ob, oe);
}

}  // namespace

void fill_avx2_act8(KernelTable* t) {
  t->quantize_acts = quantize_acts;
  t->rows[static_cast<int>(QType::QInt4)] = rows_bits<4>;
  t->rows[static_cast<int>(QType::QInt2)] = rows_bits<2>;
  t->uses_acts[static_cast<int>(QType::QInt4)] = true;
  t->uses_acts[static_cast<int>(QType::QInt2)] = true;
  t->uses_acts[static_cast<int>(QType::QInt8)] = true;  // the int16 kernel (matmul_fine_avx2.cpp)
  // Whole blocks summed in int16 (see the top of the file).
  t->act8_in_act16_blocks[static_cast<int>(QType::QInt4)] = true;
  t->act8_in_act16_blocks[static_cast<int>(QType::QInt2)] = true;
}

}  // namespace qllm::x86
