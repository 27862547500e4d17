// A branch-free e^x for loops that must vectorize (activations, softmax).
#pragma once

#include <bit>
#include <cstdint>

namespace qllm::ops {

// e^x to about 1 ulp on [-80, 80] (Cephes expf's range reduction and polynomial), without
// branches or calls so that loops over it vectorize: libm's tanhf/expf cost 15% of a GPT-2
// prefill. x is clamped to [-80, 80]: beyond it x * sigmoid(a) (ops.cpp) is x to float precision or
// below 1e-33 in magnitude, and the clamp keeps every result a normal float (denormals cost a
// microcode assist each, 10x the whole loop).
inline float exp_approx(float x) {
  x = x < -80.0f ? -80.0f : x > 80.0f ? 80.0f : x;  // not fmin/fmax: their NaN rules block SIMD
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const auto scale = std::bit_cast<float>(static_cast<int32_t>(n + 127.0f) << 23);
  return p * scale;
}

}  // namespace qllm::ops
