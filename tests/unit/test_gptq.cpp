// GPTQ on synthetic layers: exactness where it must reduce to quanto's plain rounding, the
// inverse-Hessian factor against its definition, and a lower output error ||W X - W_q X|| than
// quanto's MaxOptimizer rounding on correlated inputs (the paper's claim).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "format/convert.h"
#include "quant/gptq.h"
#include "quant/packing.h"
#include "quant/quantizer.h"

using namespace qllm;

namespace {

// A tolerance for f64 identities on O(100)-sized well-conditioned matrices.
constexpr double kIdentityTol = 1e-8;

std::vector<float> random_weights(int64_t n_out, int64_t n_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(n_out * n_in));
  for (auto& v : w) v = nd(rng);
  return w;
}

// Inputs with correlated features and uneven scales, as real activations have:
// x = z M + noise, z of lower rank than n_in. Returns X [n_tok, n_in].
std::vector<float> correlated_inputs(int64_t n_tok, int64_t n_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rank = n_in / 2;
  std::vector<float> m(static_cast<size_t>(rank * n_in));
  for (auto& v : m) v = nd(rng);
  std::vector<float> feat_scale(static_cast<size_t>(n_in));
  for (auto& s : feat_scale) s = std::exp(nd(rng));
  std::vector<float> x(static_cast<size_t>(n_tok * n_in));
  std::vector<float> z(static_cast<size_t>(rank));
  for (int64_t t = 0; t < n_tok; ++t) {
    for (auto& v : z) v = nd(rng);
    for (int64_t i = 0; i < n_in; ++i) {
      float s = 0.5f * nd(rng);
      for (int64_t k = 0; k < rank; ++k) s += z[k] * m[k * n_in + i];
      x[t * n_in + i] = s * feat_scale[i];
    }
  }
  return x;
}

std::vector<double> hessian(const std::vector<float>& x, int64_t n_tok, int64_t n_in) {
  std::vector<double> h(static_cast<size_t>(n_in * n_in), 0.0);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < n_in; ++i)
      for (int64_t j = 0; j < n_in; ++j)
        h[i * n_in + j] += double(x[t * n_in + i]) * double(x[t * n_in + j]);
  return h;
}

// sum over tokens and outputs of ((W - Wq) x)^2
double output_error(const std::vector<float>& w, const std::vector<float>& wq,
                    const std::vector<float>& x, int64_t n_out, int64_t n_in, int64_t n_tok) {
  double e = 0;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = 0; o < n_out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i)
        s += (double(w[o * n_in + i]) - double(wq[o * n_in + i])) * double(x[t * n_in + i]);
      e += s * s;
    }
  return e;
}

}  // namespace

TEST(Gptq, InverseFactorMatchesDefinition) {
  const int64_t n = 48, n_tok = 200;
  auto x = correlated_inputs(n_tok, n, 3);
  auto h = hessian(x, n_tok, n);
  std::vector<double> u;
  double damp_used = 0;
  ASSERT_TRUE(gptq_inverse_factor(h, n, 0.01, &u, &damp_used));
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += h[i * n + i];
  mean_diag /= n;
  // (H + damp*mean*I) * (U^T U) must be the identity, and U upper triangular.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) ASSERT_EQ(u[i * n + j], 0.0);
  double max_dev = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) {
        double hinv_kj = 0;
        for (int64_t m = 0; m <= std::min(k, j); ++m) hinv_kj += u[m * n + k] * u[m * n + j];
        const double hd = h[i * n + k] + (i == k ? damp_used * mean_diag : 0.0);
        s += hd * hinv_kj;
      }
      max_dev = std::max(max_dev, std::abs(s - (i == j ? 1.0 : 0.0)));
    }
  EXPECT_LT(max_dev, kIdentityTol);
}

// With uncorrelated inputs (H diagonal) there is no error to feed forward, so GPTQ must give
// exactly quanto's MaxOptimizer codes, scales and shifts, as the quantizer writes them.
TEST(Gptq, DiagonalHessianEqualsQuantoMaxRounding) {
  ThreadPool& pool = ThreadPool::global();
  for (DType dt : {DType::F32, DType::BF16}) {
    for (int bits : {4, 2}) {
      const int64_t n_out = 24, n_in = 192, g = *quanto_group_size(n_in);
      auto w = random_weights(n_out, n_in, 7);
      for (auto& v : w) v = round_to(dt, v);  // the checkpoint holds dtype values
      std::vector<double> h(static_cast<size_t>(n_in * n_in), 0.0);
      for (int64_t i = 0; i < n_in; ++i) h[i * n_in + i] = 1.0 + double(i % 7);
      GptqOptions opt{bits, g, dt};
      GptqResult r = gptq_quantize(w, n_out, n_in, h, opt, pool);

      // quanto's path in qllm: params, then packed data, unpacked here.
      std::vector<uint16_t> raw(w.size());
      std::vector<std::byte> bytes;
      WeightView view;
      if (dt == DType::BF16) {
        for (size_t k = 0; k < w.size(); ++k) raw[k] = f32_to_bf16(w[k]);
        view = {reinterpret_cast<const std::byte*>(raw.data()), dt, n_out, n_in, false};
      } else {
        view = {reinterpret_cast<const std::byte*>(w.data()), dt, n_out, n_in, false};
      }
      QuantSpec spec{bits == 4 ? QType::QInt4 : QType::QInt2, dt, g, WeightOptimizer::Max};
      const int64_t n_groups = n_scale_rows(spec, n_out, n_in);
      std::vector<float> scale(n_groups), shift(n_groups);
      ASSERT_FALSE(compute_quant_params(view, spec, scale, shift, pool).has_value());
      std::vector<std::byte> packed(quantized_bytes(spec, n_out, n_in));
      quantize_weight(view, spec, scale, shift, packed, pool);
      std::vector<uint8_t> codes(w.size());
      unpack_planar(reinterpret_cast<const uint8_t*>(packed.data()), n_groups, g, bits, codes.data());

      EXPECT_EQ(r.scale, scale) << "bits " << bits;
      EXPECT_EQ(r.shift, shift) << "bits " << bits;
      EXPECT_EQ(r.q, codes) << "bits " << bits;
    }
  }
}

TEST(Gptq, LowersOutputErrorOnCorrelatedInputs) {
  ThreadPool& pool = ThreadPool::global();
  const int64_t n_out = 32, n_in = 128, n_tok = 512;
  auto w = random_weights(n_out, n_in, 11);
  auto x = correlated_inputs(n_tok, n_in, 12);
  auto h = hessian(x, n_tok, n_in);
  struct Case {
    int bits;
    int64_t group;
    bool act_order;
  };
  for (Case c : {Case{4, 32, false}, Case{4, 128, false}, Case{4, 32, true}, Case{2, 32, false},
                 Case{2, 128, true}}) {
    GptqOptions opt{c.bits, c.group, DType::F32, 0.01, c.act_order};
    auto rtn = gptq_dequantize(max_round(w, n_out, n_in, opt, pool), n_out, n_in, c.group);
    GptqResult r = gptq_quantize(w, n_out, n_in, h, opt, pool);
    for (uint8_t q : r.q) ASSERT_LT(q, 1 << c.bits);
    auto gq = gptq_dequantize(r, n_out, n_in, c.group);
    const double e_rtn = output_error(w, rtn, x, n_out, n_in, n_tok);
    const double e_gptq = output_error(w, gq, x, n_out, n_in, n_tok);
    const double ratio = e_gptq / e_rtn;
    // GPTQ must clearly win; a near-zero error would mean the test measures nothing.
    EXPECT_LT(ratio, 0.8) << "bits " << c.bits << " group " << c.group << " act " << c.act_order;
    EXPECT_GT(ratio, 0.001) << "bits " << c.bits << " group " << c.group;
    std::printf("bits %d group %3lld act_order %d: output error GPTQ/max = %.3f\n", c.bits,
                static_cast<long long>(c.group), int(c.act_order), ratio);
  }
}

TEST(Gptq, ScalesAreRepresentableInTheModelDtype) {
  ThreadPool& pool = ThreadPool::global();
  const int64_t n_out = 8, n_in = 64, n_tok = 128;
  auto w = random_weights(n_out, n_in, 21);
  auto x = correlated_inputs(n_tok, n_in, 22);
  auto h = hessian(x, n_tok, n_in);
  GptqResult r = gptq_quantize(w, n_out, n_in, h, {4, 32, DType::BF16}, pool);
  for (size_t k = 0; k < r.scale.size(); ++k) {
    EXPECT_EQ(r.scale[k], round_to(DType::BF16, r.scale[k]));
    EXPECT_EQ(r.shift[k], round_to(DType::BF16, r.shift[k]));
  }
}

TEST(Gptq, DeadInputsStillQuantize) {
  ThreadPool& pool = ThreadPool::global();
  const int64_t n_out = 4, n_in = 32;
  auto w = random_weights(n_out, n_in, 5);
  std::vector<double> h(static_cast<size_t>(n_in * n_in), 0.0);  // no calibration signal at all
  GptqResult r = gptq_quantize(w, n_out, n_in, h, {4, 32, DType::F32}, pool);
  EXPECT_EQ(r.q, max_round(w, n_out, n_in, {4, 32, DType::F32}, pool).q);
}

// The refit is a least-squares solve for fixed codes, so it cannot raise the output error (f32
// rounding of the refitted scale aside), and the refined result keeps the best row of each
// candidate, so it is never worse than one GPTQ pass.
TEST(Gptq, RefitAndRefinementNeverRaiseOutputError) {
  ThreadPool& pool = ThreadPool::global();
  const int64_t n_out = 16, n_in = 96, n_tok = 256;
  auto w = random_weights(n_out, n_in, 31);
  auto x = correlated_inputs(n_tok, n_in, 32);
  auto h = hessian(x, n_tok, n_in);
  for (int64_t g : {int64_t{32}, n_in}) {
    GptqOptions opt{4, g, DType::F32};
    GptqResult r = gptq_quantize(w, n_out, n_in, h, opt, pool);
    GptqResult refit = refit_grid(w, n_out, n_in, h, r, opt, pool);
    EXPECT_EQ(refit.q, r.q);
    auto e0 = row_output_error(w, n_out, n_in, h, r, g, pool);
    auto e1 = row_output_error(w, n_out, n_in, h, refit, g, pool);
    GptqResult best = gptq_refined(w, n_out, n_in, h, opt, pool, nullptr, 2);
    auto e2 = row_output_error(w, n_out, n_in, h, best, g, pool);
    double s0 = 0, s1 = 0;
    for (int64_t o = 0; o < n_out; ++o) {
      EXPECT_LE(e1[o], e0[o] * (1 + 1e-5)) << "row " << o << " group " << g;
      EXPECT_LE(e2[o], e0[o]) << "row " << o << " group " << g;
      s0 += e0[o];
      s1 += e2[o];
    }
    std::printf("group %3lld: refined/plain GPTQ output error = %.3f\n", static_cast<long long>(g), s1 / s0);
  }
}
