#include "runtime/ops.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace qllm::ops {

// The library is built for baseline x86-64; the loops of these few ops outside the matmuls are
// cloned for AVX-512 and AVX2 too, and the loader picks the clone this CPU runs (ifunc).
#if defined(__x86_64__)
#define QLLM_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QLLM_SIMD_CLONES
#endif

void layer_norm(const float* x, const NormWeights& n, int64_t dim, float eps, float* out) {
  // Accumulate in double: the mean and variance then equal torch's to float rounding.
  double sum = 0.0;
  for (int64_t i = 0; i < dim; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(dim);
  double var = 0.0;
  for (int64_t i = 0; i < dim; ++i) {
    const double d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<double>(dim);
  const auto inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const auto m = static_cast<float>(mean);
  for (int64_t i = 0; i < dim; ++i) {
    float y = (x[i] - m) * inv * n.w[i];
    out[i] = n.b.empty() ? y : y + n.b[i];
  }
}

void rms_norm(const float* x, const NormWeights& n, int64_t dim, float eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  // HF multiplies the normalized value (in float32) by the weight.
  for (int64_t i = 0; i < dim; ++i) out[i] = n.w[i] * (x[i] * inv);
}

namespace {

// e^x to about 1 ulp on [-80, 80] (Cephes expf's range reduction and polynomial), without
// branches or calls so that loops over it vectorize: libm's tanhf/expf cost 15% of a GPT-2
// prefill. x is clamped to [-80, 80]: beyond it x * sigmoid(a) below is x to float precision or
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

// x * sigmoid(a) = x / (1 + e^-a). SiLU is a = x; GELU's tanh form 0.5 x (1 + tanh(z)) equals
// x * sigmoid(2 z), z = sqrt(2/pi) (x + 0.044715 x^3), with no cancellation for negative x.
inline float times_sigmoid(float x, float a) { return x / (1.0f + exp_approx(-a)); }

inline float act_one(Activation act, float x) {
  switch (act) {
    case Activation::GeluTanh: {
      constexpr float kTwoSqrt2OverPi = 2.0f * 0.7978845608028654f;
      return times_sigmoid(x, kTwoSqrt2OverPi * (x + 0.044715f * x * x * x));
    }
    // 1 + erf(v) = erfc(-v), which keeps the negative tail that 1 + erf rounds to 0.
    case Activation::GeluErf: return 0.5f * x * std::erfc(-x * 0.7071067811865476f);
    case Activation::Silu: return times_sigmoid(x, x);
  }
  return x;
}

// One loop per activation and form, so the switch is outside and each loop vectorizes.
template <Activation A>
void activate_as(float* x, const float* up, int64_t n) {
  if (up == nullptr) {
    for (int64_t i = 0; i < n; ++i) x[i] = act_one(A, x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = act_one(A, x[i]) * up[i];
  }
}

QLLM_SIMD_CLONES void activate_any(Activation act, float* x, const float* up, int64_t n) {
  switch (act) {
    case Activation::GeluTanh: return activate_as<Activation::GeluTanh>(x, up, n);
    case Activation::GeluErf: return activate_as<Activation::GeluErf>(x, up, n);
    case Activation::Silu: return activate_as<Activation::Silu>(x, up, n);
  }
}

}  // namespace

void activate(Activation act, float* x, int64_t n) { activate_any(act, x, nullptr, n); }

void activate_mul(Activation act, float* gate, const float* up, int64_t n) { activate_any(act, gate, up, n); }

void rope_tables(float theta, int64_t head_dim, int64_t n_pos, float* cos_out, float* sin_out) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // Same float32 steps as transformers: arange(0, d, 2).float() / d, theta ** that, 1 / that.
    const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float inv_freq = 1.0f / std::pow(theta, e);
    for (int64_t p = 0; p < n_pos; ++p) {
      const float a = static_cast<float>(p) * inv_freq;
      cos_out[p * half + i] = std::cos(a);
      sin_out[p * half + i] = std::sin(a);
    }
  }
}

void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

namespace {

// 16 floats as one GCC/Clang vector value: each ISA clone of attend() turns it into one zmm, two
// ymm or four xmm registers, where the autovectorizer kept scalar sums. aligned(4) makes loads
// through it unaligned ones; vector types may alias their element type.
using Float16 = float __attribute__((vector_size(64), aligned(4)));
inline const Float16& at16(const float* p) { return *reinterpret_cast<const Float16*>(p); }

// q . k with 16 partial sums (one running sum is a dependency chain per element).
inline float dot(const float* q, const float* k, int64_t n) {
  Float16 part = {};
  int64_t d = 0;
  for (; d + 16 <= n; d += 16) part += at16(q + d) * at16(k + d);
  float s = 0.0f;
  for (int l = 0; l < 16; ++l) s += part[l];
  for (; d < n; ++d) s += q[d] * k[d];
  return s;
}

}  // namespace

QLLM_SIMD_CLONES void attend(const float* q, const float* k, const float* v, int64_t stride, int64_t n_kv,
            int64_t head_dim, float scale, float* scores, float* out) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n_kv; ++j) {
    const float s = dot(q, k + j * stride, head_dim) * scale;
    scores[j] = s;
    mx = std::max(mx, s);
  }
  for (int64_t j = 0; j < n_kv; ++j) scores[j] = exp_approx(scores[j] - mx);  // vectorizes
  float sum = 0.0f;
  for (int64_t j = 0; j < n_kv; ++j) sum += scores[j];
  const float inv = 1.0f / sum;
  // Columns of 16 outputs summed over all keys in registers: summing into `out` key by key
  // made every key a store and a reload of it (a third of attention's time).
  int64_t d0 = 0;
  for (; d0 + 16 <= head_dim; d0 += 16) {
    Float16 acc = {};
    for (int64_t j = 0; j < n_kv; ++j) acc += scores[j] * inv * at16(v + j * stride + d0);
    *reinterpret_cast<Float16*>(out + d0) = acc;
  }
  for (int64_t d = d0; d < head_dim; ++d) {
    float acc = 0.0f;
    for (int64_t j = 0; j < n_kv; ++j) acc += scores[j] * inv * v[j * stride + d];
    out[d] = acc;
  }
}

}  // namespace qllm::ops
