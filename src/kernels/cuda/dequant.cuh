// Device helpers shared by the GEMV and dequantize kernels: streaming 16-byte loads and the
// decoding of one 16-byte chunk of a GPU-layout row (gpu_matrix.h) into floats.
//
// Integers become floats without I2F (quarter rate on Hopper): a byte or nibble is placed in the
// low mantissa bits of 2^23 and 2^23 is subtracted, which is exact.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/cuda/gpu_matrix.h"

namespace qllm::cuda {

// Weights in one 16-byte chunk.
template <QType Q>
constexpr int kChunkWeights = Q == QType::F32 ? 4 : (Q == QType::F16 || Q == QType::BF16) ? 8
                            : (Q == QType::QInt8 || Q == QType::QFloat8) ? 16
                            : Q == QType::QInt4 ? 32 : 64;

// Weights are read once per token step: keep them out of L1.
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}

__device__ __forceinline__ float magic_u(uint32_t small) {
  return __uint_as_float(0x4B000000u | small) - 8388608.0f;
}

// 4 signed bytes -> 4 floats.
__device__ __forceinline__ void decode_i8x4(uint32_t w, float* f) {
  const uint32_t u = w ^ 0x80808080u;  // q + 128, unsigned
  f[0] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440)) - 8388736.0f;
  f[1] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7441)) - 8388736.0f;
  f[2] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7442)) - 8388736.0f;
  f[3] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7443)) - 8388736.0f;
}

__device__ __forceinline__ void decode_f8x4(uint32_t w, float* f) {
  const __half2_raw lo = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w & 0xFFFFu), __NV_E4M3);
  const __half2_raw hi = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo)), b = __half22float2(__half2(hi));
  f[0] = a.x; f[1] = a.y; f[2] = b.x; f[3] = b.y;
}

// Raw chunk -> E floats; QInt8/QFloat8 unscaled (the row scale is applied once per row),
// QInt4/QInt2 as scale * q - shift of the group of each run of 32.
template <QType Q>
__device__ __forceinline__ void decode_chunk(uint4 v, const GpuMatrix& w, int64_t o, int64_t i0,
                                             float* f) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
  if constexpr (Q == QType::F32) {
#pragma unroll
    for (int k = 0; k < 4; ++k) f[k] = __uint_as_float(u[k]);
  } else if constexpr (Q == QType::BF16) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      f[2 * k] = __uint_as_float(u[k] << 16);
      f[2 * k + 1] = __uint_as_float(u[k] & 0xFFFF0000u);
    }
  } else if constexpr (Q == QType::F16) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      __half2_raw r;
      r.x = static_cast<unsigned short>(u[k] & 0xFFFFu);
      r.y = static_cast<unsigned short>(u[k] >> 16);
      const float2 p = __half22float2(__half2(r));
      f[2 * k] = p.x;
      f[2 * k + 1] = p.y;
    }
  } else if constexpr (Q == QType::QInt8) {
#pragma unroll
    for (int k = 0; k < 4; ++k) decode_i8x4(u[k], f + 4 * k);
  } else if constexpr (Q == QType::QFloat8) {
#pragma unroll
    for (int k = 0; k < 4; ++k) decode_f8x4(u[k], f + 4 * k);
  } else {
    constexpr int bits = Q == QType::QInt4 ? 4 : 2;
    constexpr int per_word = 32 / bits;      // weights per 32-bit word
    constexpr int words_per_run = 32 / per_word;  // words per run of 32 weights
    constexpr uint32_t mask = (1u << bits) - 1;
    const int64_t gpr = w.n_in / w.group_size;
#pragma unroll
    for (int r = 0; r < 4 / words_per_run; ++r) {
      // One group per run of 32; padding beyond n_in takes the row's last group (its x is 0).
      const int64_t first = i0 + 32 * r;
      const int in_row = static_cast<int>(first < w.n_in ? first : w.n_in - 1);
      const int64_t g = o * gpr + in_row / static_cast<int>(w.group_size);
      const float s = __ldg(w.scale + g), m = __ldg(w.shift + g);
#pragma unroll
      for (int k = r * words_per_run; k < (r + 1) * words_per_run; ++k)
#pragma unroll
        for (int j = 0; j < per_word; ++j)
          f[k * per_word + j] = fmaf(s, magic_u((u[k] >> (bits * j)) & mask), -m);
    }
  }
}

}  // namespace qllm::cuda
