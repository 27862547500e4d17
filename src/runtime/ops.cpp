#include "runtime/ops.h"

#include <cmath>
#include <numbers>

#include "runtime/fast_exp.h"

namespace qllm::ops {

// The library is built for baseline x86-64; the norms and the activation loop are cloned for
// AVX-512 and AVX2 too, and the loader picks the clone this CPU runs (ifunc). Attention:
// attend.cpp.
#if defined(__x86_64__)
#define QLLM_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QLLM_SIMD_CLONES
#endif

namespace {

// sum_i f(x[i]) in double, in 8 interleaved partial sums that the compiler keeps in vectors: one
// running sum is a chain of dependent adds, 4 cycles each (a LayerNorm of 768 took 1.75 us).
template <class F>
[[gnu::always_inline]] inline double sum_double(const float* x, int64_t n, F f) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += f(static_cast<double>(x[i + k]));
  for (; i < n; ++i) lane[i % 8] += f(static_cast<double>(x[i]));
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

}  // namespace

QLLM_SIMD_CLONES void layer_norm(const float* x, const NormWeights& n, int64_t dim, float eps, float* out) {
  // Accumulate in double: the mean and variance then equal torch's to float rounding.
  const double mean = sum_double(x, dim, [](double v) { return v; }) / static_cast<double>(dim);
  const double var = sum_double(x, dim, [mean](double v) { return (v - mean) * (v - mean); }) / static_cast<double>(dim);
  const auto inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const auto m = static_cast<float>(mean);
  const float* w = n.w.data();
  if (n.b.empty()) {
    for (int64_t i = 0; i < dim; ++i) out[i] = (x[i] - m) * inv * w[i];
  } else {
    const float* b = n.b.data();
    for (int64_t i = 0; i < dim; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
  }
}

QLLM_SIMD_CLONES void rms_norm(const float* x, const NormWeights& n, int64_t dim, float eps, float* out) {
  const double ss = sum_double(x, dim, [](double v) { return v * v; });
  const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  // HF multiplies the normalized value (in float32) by the weight.
  const float* w = n.w.data();
  for (int64_t i = 0; i < dim; ++i) out[i] = w[i] * (x[i] * inv);
}

namespace {

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

// One loop per activation and form, so the switch is outside and each loop vectorizes. Inlined
// into each clone of activate_any: called, it was built for baseline x86-64 only (SSE, 2.7 ns an
// element for GELU on Zen 3).
template <Activation A>
[[gnu::always_inline]] inline void activate_as(float* x, const float* up, int64_t n) {
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

namespace {

// transformers' float32 steps for one inverse frequency (modeling_rope_utils: linear and llama3).
// torch computes `scalar / tensor` as reciprocal(tensor) * scalar; so does this.
float scale_inv_freq(float inv_freq, const RopeScaling& r) {
  switch (r.kind) {
    case RopeScaling::Kind::None: return inv_freq;
    case RopeScaling::Kind::Linear: return inv_freq / r.factor;
    case RopeScaling::Kind::Llama3: {
      const float wavelen = (1.0f / inv_freq) * static_cast<float>(2.0 * std::numbers::pi);
      const auto low_wavelen = static_cast<float>(double{r.original_positions} / r.low_freq_factor);
      const auto high_wavelen = static_cast<float>(double{r.original_positions} / r.high_freq_factor);
      if (wavelen > low_wavelen) return inv_freq / r.factor;
      if (wavelen < high_wavelen) return inv_freq;
      const float smooth = ((1.0f / wavelen) * r.original_positions - r.low_freq_factor) /
                           static_cast<float>(double{r.high_freq_factor} - double{r.low_freq_factor});
      return (1.0f - smooth) * inv_freq / r.factor + smooth * inv_freq;
    }
  }
  return inv_freq;
}

}  // namespace

void rope_tables(float theta, const RopeScaling& scaling, int64_t head_dim, int64_t n_pos, float* cos_out,
                 float* sin_out) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // Same float32 steps as transformers: arange(0, d, 2).float() / d, theta ** that, 1 / that.
    const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float inv_freq = scale_inv_freq(1.0f / std::pow(theta, e), scaling);
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

}  // namespace qllm::ops
