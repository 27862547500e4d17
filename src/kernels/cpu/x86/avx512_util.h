// Small AVX-512 helpers shared by the *_avx512.cpp kernel files (and only by them: they are
// compiled with the AVX-512 flags, so nothing here may be included elsewhere).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace qllm::x86 {

#define QLLM_UNROLL _Pragma("GCC unroll 16")

inline __mmask16 mask16(int64_t rest) {
  return rest >= 16 ? static_cast<__mmask16>(0xffff)
                    : rest <= 0 ? 0 : static_cast<__mmask16>((1u << rest) - 1);
}
inline __mmask32 mask32(int64_t rest) {
  return rest >= 32 ? ~0u : rest <= 0 ? 0u : _bzhi_u32(~0u, static_cast<unsigned>(rest));
}
inline __mmask64 mask64(int64_t rest) { return rest >= 64 ? ~0ull : _bzhi_u64(~0ull, static_cast<unsigned>(rest)); }

// Horizontal reductions (GCC 12's _mm512_reduce_* warn about uninitialized temporaries).
inline float hsum(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
}
inline float hmax(__m512 v) {
  const __m256 s8 = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s4 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_max_ss(s4, _mm_movehdup_ps(s4)));
}
inline int hsum_epi32(__m512i v) {
  const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  return _mm_cvtsi128_si32(s4);
}

// ---- int4/int2 weights in Layout::Interleaved16 (prepare.h) ----
// A vector of 64 bytes holds 4 bytes of each of 16 rows. In a chunk of 64 weights (nb =
// 64 * Bits / 8 bytes per row) word m of a row holds, in bit field f, that row's weights
// f * nb + 4m .. f * nb + 4m + 3. Weights of field f of a loaded word, one byte each: lane l
// (bytes 4l .. 4l + 3) is row l, ready for vpdpbusd against 4 broadcast activations.
template <int Bits>
inline __m512i tile_field(__m512i v, int f) {
  const __m512i mask = _mm512_set1_epi8((1 << Bits) - 1);
  return f == 0 ? _mm512_and_si512(v, mask) : _mm512_and_si512(_mm512_srli_epi16(v, f * Bits), mask);
}
// Scales (or shifts) of group g for the 16 rows of the tile at row o: v[o + l, g] of a
// [n_out, gpr] array, 0 for rows past n_out.
inline __m512 tile_group_values(const float* v, int64_t o, int64_t gpr, int64_t g, int64_t n_out) {
  const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(static_cast<int>(gpr)));
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask16(n_out - o), rows, v + o * gpr + g, 4);
}

}  // namespace qllm::x86
