// Small AVX-512 helpers shared by the *_avx512.cpp kernel files (and only by them: they are
// compiled with the AVX-512 flags, so nothing here may be included elsewhere).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace qllm::x86 {

#define QLLM_UNROLL _Pragma("GCC unroll 16")

// A tile reads R weight rows side by side. When rows are short, several such streams share one
// 4 KiB page and the hardware prefetcher follows them poorly: one core reached 7 GB/s on
// 4864x896 int8 rows. Prefetching each row this far ahead brought it to 12-13 GB/s, as on long
// rows (bench_matmul decode/*); on whole-model decode 16 KiB beat 4 KiB by 5-25% (Qwen2-0.5B
// and GPT-2, int8 and int4) and 2 KiB lost 15%. Prefetches never fault, so reading past the
// end of a tensor is harmless.
inline constexpr int64_t kPrefetchDistance = 16 << 10;
inline void prefetch_ahead(const void* p) {
  _mm_prefetch(static_cast<const char*>(p) + kPrefetchDistance, _MM_HINT_T0);
}

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
