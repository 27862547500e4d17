#include "format/convert.h"

#include <cmath>

#include "util/error.h"

namespace qllm {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));  // Inf / NaN
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_to_f32(sign);
  // Subnormal: value = mant * 2^-24, exact in f32.
  float v = std::ldexp(static_cast<float>(mant), -24);
  return sign ? -v : v;
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((abs >> 13) & 0x3ffu);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: Inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): scale to units of 2^-24 and round to nearest even.
    float a = bits_to_f32(abs);
    float scaled = a * 16777216.0f;  // exact: power of two
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

float f8e4m3_to_f32(uint8_t b) {
  // E4M3FN: bias 7, no Inf, S.1111.111 is NaN, max 448.
  const bool neg = b & 0x80;
  const int exp = (b >> 3) & 0xf;
  const int mant = b & 0x7;
  float v;
  if (exp == 0xf && mant == 0x7) return neg ? -NAN : NAN;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -9);
  else v = std::ldexp(1.0f + mant / 8.0f, exp - 7);
  return neg ? -v : v;
}

float f8e5m2_to_f32(uint8_t b) {
  // E5M2 is the top byte of an IEEE half.
  return f16_to_f32(static_cast<uint16_t>(b) << 8);
}

uint8_t f32_to_f8e4m3(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  if (std::isnan(f)) return sign | 0x7f;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;  // saturate (torch's cast saturates finite values? see quant/)
  if (a < std::ldexp(1.0f, -6)) {
    // Subnormal range: units of 2^-9.
    return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));
  }
  // Normal: keep 3 mantissa bits, round to nearest even on the f32 bits.
  uint32_t abs = f32_to_bits(a);
  uint32_t rounded = abs + 0x7ffffu + ((abs >> 20) & 1u);
  int exp = static_cast<int>((rounded >> 23) & 0xff) - 127 + 7;
  uint32_t mant = (rounded >> 20) & 0x7u;
  if (exp > 15 || (exp == 15 && mant == 7)) return sign | 0x7e;
  return sign | static_cast<uint8_t>((exp << 3) | mant);
}

namespace {
template <typename T>
T load(const void* src, std::size_t i) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(src) + i * sizeof(T), sizeof(T));
  return v;
}
}  // namespace

void to_f32(DType t, const void* src, std::span<float> out) {
  const std::size_t n = out.size();
  switch (t) {
    case DType::F32: std::memcpy(out.data(), src, n * 4); return;
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<double>(src, i));
      return;
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load<uint16_t>(src, i));
      return;
    case DType::F16:
      for (std::size_t i = 0; i < n; ++i) out[i] = f16_to_f32(load<uint16_t>(src, i));
      return;
    case DType::F8_E4M3:
      for (std::size_t i = 0; i < n; ++i) out[i] = f8e4m3_to_f32(load<uint8_t>(src, i));
      return;
    case DType::F8_E5M2:
      for (std::size_t i = 0; i < n; ++i) out[i] = f8e5m2_to_f32(load<uint8_t>(src, i));
      return;
    case DType::I64:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<int64_t>(src, i));
      return;
    case DType::I32:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<int32_t>(src, i));
      return;
    case DType::I16:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<int16_t>(src, i));
      return;
    case DType::I8:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<int8_t>(src, i));
      return;
    case DType::U8:
    case DType::BOOL:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<uint8_t>(src, i));
      return;
  }
}

void from_f32(DType t, std::span<const float> in, void* dst) {
  auto* d = static_cast<unsigned char*>(dst);
  switch (t) {
    case DType::F32: std::memcpy(dst, in.data(), in.size() * 4); return;
    case DType::BF16:
      for (std::size_t i = 0; i < in.size(); ++i) {
        uint16_t h = f32_to_bf16(in[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      return;
    case DType::F16:
      for (std::size_t i = 0; i < in.size(); ++i) {
        uint16_t h = f32_to_f16(in[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      return;
    case DType::F8_E4M3:
      for (std::size_t i = 0; i < in.size(); ++i) d[i] = f32_to_f8e4m3(in[i]);
      return;
    default: QLLM_ASSERT(!"from_f32: unsupported target dtype");
  }
}

std::optional<DType> dtype_from_torch_name(std::string_view name) {
  if (name == "float32" || name == "float") return DType::F32;
  if (name == "float16" || name == "half") return DType::F16;
  if (name == "bfloat16") return DType::BF16;
  if (name == "float64") return DType::F64;
  return std::nullopt;
}

std::string_view dtype_torch_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F64: return "float64";
    default: return "unknown";
  }
}

}  // namespace qllm
