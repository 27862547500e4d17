// Exact conversions between the stored float formats and f32.
//
// Widening (BF16, F16, F8_E4M3, F8_E5M2 -> f32) is exact for every bit pattern, NaN, Inf and
// subnormals included. Narrowing rounds to nearest, ties to even, which is what torch's
// .to(dtype) does; quanto's arithmetic is reproduced by rounding every intermediate through
// round_to() (see quant/).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "format/dtype.h"

namespace qllm {

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaN stays a (quiet) NaN with its sign.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f8e4m3_to_f32(uint8_t b);
float f8e5m2_to_f32(uint8_t b);
// Saturating to +-448 like torch's float8_e4m3fn cast of finite values; NaN -> 0x7f.
uint8_t f32_to_f8e4m3(float f);

// Rounds an f32 to the nearest value representable in `t` (F32, F16 or BF16), as an f32.
inline float round_to(DType t, float f) {
  switch (t) {
    case DType::BF16: return bf16_to_f32(f32_to_bf16(f));
    case DType::F16: return f16_to_f32(f32_to_f16(f));
    default: return f;
  }
}

// Converts `out.size()` elements of a float dtype at `src` (any alignment) to f32.
// Integer dtypes convert by value. Precondition: src holds out.size() elements.
void to_f32(DType t, const void* src, std::span<float> out);

// Writes `in` as dtype `t` (F32, F16, BF16, F8_E4M3) to `dst` (any alignment).
void from_f32(DType t, std::span<const float> in, void* dst);

}  // namespace qllm
