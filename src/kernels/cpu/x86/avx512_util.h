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

}  // namespace qllm::x86
