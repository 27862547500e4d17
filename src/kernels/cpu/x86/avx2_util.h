// Small AVX2 helpers shared by the *_avx2.cpp kernel files (and only by them: they are compiled
// with the AVX2 flags, so nothing here may be included elsewhere).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace qllm::x86 {

#define QLLM_UNROLL _Pragma("GCC unroll 16")

// An optimization barrier for one accumulator: GCC turns a fully unrolled chain of integer
// adds (dot += p1; dot += p2; ...) into a balanced tree, and the tree's partial sums for every
// row of a tile no longer fit in 16 registers, so they are spilled and reloaded.
inline void keep_chain(__m256i& v) { asm("" : "+x"(v)); }

// sum + p, computed in sum's own register. For `sum = _mm256_add_epi32(sum, p)` in a loop
// GCC 12 writes to a new register and copies it back every iteration, or, where a tile's sums
// are many, keeps them on the stack; as with keep_chain, it also cannot rebuild a chain of these
// into a tree.
inline __m256i add_in_place_epi32(__m256i sum, __m256i p) {
  asm("vpaddd %1, %0, %0" : "+x"(sum) : "x"(p));
  return sum;
}
inline __m256i add_in_place_epi16(__m256i sum, __m256i p) {
  asm("vpaddw %1, %0, %0" : "+x"(sum) : "x"(p));
  return sum;
}

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

// p[i .. i+8) with the elements at or past n read as 0 (and not read: masked loads never fault).
inline __m256 load8_zero_past(const float* p, int64_t i, int64_t n) {
  if (i + 8 <= n) return _mm256_loadu_ps(p + i);
  const int64_t rest = n - i < 0 ? 0 : n - i;
  const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rest)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm256_maskload_ps(p + i, m);
}

}  // namespace qllm::x86
