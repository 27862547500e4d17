#include "runtime/ops.h"

#include <algorithm>
#include <cmath>

namespace qllm::ops {

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

inline float act_one(Activation act, float x) {
  switch (act) {
    case Activation::GeluTanh: {
      constexpr float kSqrt2OverPi = 0.7978845608028654f;
      return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    }
    case Activation::GeluErf: return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
    case Activation::Silu: return x / (1.0f + std::exp(-x));
  }
  return x;
}

}  // namespace

void activate(Activation act, float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = act_one(act, x[i]);
}

void activate_mul(Activation act, float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = act_one(act, gate[i]) * up[i];
}

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

void attend(const float* q, const float* k, const float* v, int64_t stride, int64_t n_kv,
            int64_t head_dim, float scale, float* scores, float* out) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n_kv; ++j) {
    const float* kj = k + j * stride;
    float s = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) s += q[d] * kj[d];
    s *= scale;
    scores[j] = s;
    mx = std::max(mx, s);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < n_kv; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  const float inv = 1.0f / sum;
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t j = 0; j < n_kv; ++j) {
    const float p = scores[j] * inv;
    const float* vj = v + j * stride;
    for (int64_t d = 0; d < head_dim; ++d) out[d] += p * vj[d];
  }
}

}  // namespace qllm::ops
