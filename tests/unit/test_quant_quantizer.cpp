// Quantizer arithmetic against optimum-quanto's formulas (library/quantize.py, optimizers/*.py),
// guards for zero and non-finite weights, and error windows from quantization theory.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "format/convert.h"
#include "quant/packing.h"
#include "quant/quantizer.h"

using namespace qllm;

namespace {

WeightView view(const std::vector<float>& w, int64_t n_out, int64_t n_in) {
  return {reinterpret_cast<const std::byte*>(w.data()), DType::F32, n_out, n_in, false};
}

struct Result {
  std::vector<float> scale, shift;
  std::vector<uint8_t> data;
  QuantError err, base;
};

Result run(const std::vector<float>& w, int64_t n_out, int64_t n_in, QuantSpec s) {
  ThreadPool pool(2);
  Result r;
  const int64_t ns = n_scale_rows(s, n_out, n_in);
  r.scale.resize(ns);
  if (qtype_info(s.qtype).affine) r.shift.resize(ns);
  auto bad = compute_quant_params(view(w, n_out, n_in), s, r.scale, r.shift, pool);
  EXPECT_FALSE(bad.has_value());
  r.data.resize(quantized_bytes(s, n_out, n_in));
  r.err = quantize_weight(view(w, n_out, n_in), s, r.scale, r.shift,
                          std::as_writable_bytes(std::span(r.data)), pool, &r.base);
  return r;
}

std::vector<float> gaussian(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

TEST(QuantQuantizer, Int8RoundsHalfToEven) {
  // absmax 127 -> scale 1; torch.round: 2.5 -> 2, -1.5 -> -2, 0.5 -> 0.
  std::vector<float> w = {2.5f, 127.0f, 0.5f, -1.5f, 3.5f, -126.6f};
  QuantSpec s{QType::QInt8, DType::F32, 0, WeightOptimizer::Absmax, false};
  auto r = run(w, 1, 6, s);
  EXPECT_EQ(r.scale[0], 1.0f);
  const std::vector<int8_t> expect = {2, 127, 0, -2, 4, -127};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(static_cast<int8_t>(r.data[i]), expect[i]) << i;
}

TEST(QuantQuantizer, Int8ScaleRoundedToModelDtype) {
  // scale = dt(absmax / 127): in BF16 0.3/127 rounds to the nearest bfloat16.
  const float absmax = bf16_to_f32(f32_to_bf16(0.3f));
  std::vector<float> w = {absmax, -0.1f};
  EXPECT_EQ(absmax_scale(w, 127.0f, DType::BF16), bf16_to_f32(f32_to_bf16(absmax / 127.0f)));
  EXPECT_EQ(absmax_scale(w, 127.0f, DType::F32), absmax / 127.0f);
  EXPECT_EQ(absmax_scale(w, 448.0f, DType::F16), f16_to_f32(f32_to_f16(absmax / 448.0f)));
}

TEST(QuantQuantizer, ZeroRowsGiveZeroScaleAndNoNaN) {
  for (QType q : {QType::QInt8, QType::QFloat8, QType::QInt4, QType::QInt2}) {
    std::vector<float> w(2 * 256, 0.0f);
    for (int i = 256; i < 512; ++i) w[i] = 0.01f * (i % 7) - 0.03f;  // row 1 not zero
    QuantSpec s{q, DType::BF16, 128, default_optimizer(q), false};
    auto r = run(w, 2, 256, s);
    EXPECT_EQ(r.scale[0], 0.0f) << qtype_name(q);
    EXPECT_TRUE(std::isfinite(r.err.sum_sq_err)) << qtype_name(q);
    if (!qtype_info(q).affine) {
      for (int i = 0; i < 256; ++i) ASSERT_EQ(r.data[i], 0) << qtype_name(q);
    }
  }
}

TEST(QuantQuantizer, ConstantGroupDequantizesExactly) {
  // max == min: scale 0, shift = -c, q = 0, so scale*q - shift == c.
  std::vector<float> w(256, 0.75f);
  QuantSpec s{QType::QInt4, DType::F32, 128, WeightOptimizer::Max, false};
  auto r = run(w, 1, 256, s);
  EXPECT_EQ(r.scale[0], 0.0f);
  EXPECT_EQ(r.shift[0], -0.75f);
  EXPECT_EQ(r.err.max_abs, 0.0);
}

TEST(QuantQuantizer, Int4MaxOptimizerFormula) {
  // One group of 16 values 0..15 shifted by -3: min -3, max 12 -> scale 1, shift 3, q = w + 3.
  std::vector<float> w(16);
  for (int i = 0; i < 16; ++i) w[i] = static_cast<float>(i) - 3.0f;
  QuantSpec s{QType::QInt4, DType::F32, 16, WeightOptimizer::Max, false};
  auto r = run(w, 1, 16, s);
  EXPECT_EQ(r.scale[0], 1.0f);
  EXPECT_EQ(r.shift[0], 3.0f);
  std::vector<uint8_t> q(16);
  unpack_planar(r.data.data(), 1, 16, 4, q.data());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(q[i], i);
  EXPECT_EQ(r.err.max_abs, 0.0);
}

TEST(QuantQuantizer, NonFiniteWeightIsReportedWithItsIndex) {
  std::vector<float> w(4 * 8, 0.1f);
  w[2 * 8 + 5] = NAN;
  w[3 * 8 + 1] = INFINITY;
  ThreadPool pool(2);
  for (QType q : {QType::QInt8, QType::QInt4}) {
    QuantSpec s{q, DType::F32, 8, default_optimizer(q), false};
    std::vector<float> scale(n_scale_rows(s, 4, 8)), shift(scale.size());
    auto bad = compute_quant_params(view(w, 4, 8), s, scale, shift, pool);
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(*bad, 2 * 8 + 5);
  }
}

TEST(QuantQuantizer, TransposedViewMatchesRowMajor) {
  const int64_t n_out = 6, n_in = 256;
  auto w = gaussian(n_out * n_in, 3);
  std::vector<float> wt(w.size());
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) wt[i * n_out + o] = w[o * n_in + i];
  QuantSpec s{QType::QInt4, DType::F32, 128, WeightOptimizer::Max, false};
  ThreadPool pool(2);
  std::vector<float> sc(n_scale_rows(s, n_out, n_in)), sh(sc.size()), sc2(sc.size()), sh2(sc.size());
  compute_quant_params(view(w, n_out, n_in), s, sc, sh, pool);
  WeightView tv{reinterpret_cast<const std::byte*>(wt.data()), DType::F32, n_out, n_in, true};
  compute_quant_params(tv, s, sc2, sh2, pool);
  EXPECT_EQ(sc, sc2);
  EXPECT_EQ(sh, sh2);
}

// Uniform rounding noise has variance step^2/12. For Gaussian rows of 256 the absmax is about
// 2.9 sigma, so int8 SQNR ~ 10 log10(12 * 127^2 / 2.9^2) ~ 43.6 dB; int4 with groups of 128
// spans ~5.2 sigma over 15 steps, ~ 20 dB; int2 over 3 steps, ~ 6 dB (clamping aside). Windows
// are +-3 dB around those.
TEST(QuantQuantizer, ErrorWithinTheoreticalWindows) {
  const int64_t n_out = 64, n_in = 256;
  auto w = gaussian(n_out * n_in, 11);
  struct Case {
    QType q;
    double lo, hi;
  };
  for (Case c : {Case{QType::QInt8, 40.6, 46.6}, Case{QType::QInt4, 17.0, 23.0},
                 Case{QType::QInt2, 3.0, 9.0}, Case{QType::QFloat8, 25.0, 35.0}}) {
    QuantSpec s{c.q, DType::F32, 128, default_optimizer(c.q), false};
    auto r = run(w, n_out, n_in, s);
    EXPECT_GT(r.err.sqnr_db(), c.lo) << qtype_name(c.q);
    EXPECT_LT(r.err.sqnr_db(), c.hi) << qtype_name(c.q);
  }
}

TEST(QuantQuantizer, SearchAndHqqNeverWorseThanMax) {
  const int64_t n_out = 32, n_in = 256;
  auto w = gaussian(n_out * n_in, 5);
  for (QType q : {QType::QInt4, QType::QInt2}) {
    QuantSpec s{q, DType::BF16, 128, WeightOptimizer::Search, false};
    auto r = run(w, n_out, n_in, s);
    EXPECT_LT(r.err.rmse(), r.base.rmse()) << qtype_name(q);
    // Least-squares refits on Gaussian groups gain well under a factor of two in RMSE.
    EXPECT_GT(r.err.rmse(), 0.5 * r.base.rmse()) << qtype_name(q);
    s.optimizer = WeightOptimizer::Hqq;
    auto h = run(w, n_out, n_in, s);
    EXPECT_LE(h.err.rmse(), 1.05 * h.base.rmse()) << qtype_name(q);
  }
}

TEST(QuantQuantizer, TinygemmShiftRoundTrip) {
  // F32 is lossless: h - (-shift + h) == shift for these exactly representable values.
  EXPECT_EQ(tinygemm_shift_round_trip(0.25f, 1.5f, 4, DType::F32), 1.5f);
  // BF16 keeps 8 significant bits: with scale 1 (h = 8) and shift 1/256, -shift + 8 rounds to 8,
  // so the stored shift becomes 0.
  EXPECT_EQ(tinygemm_shift_round_trip(1.0f, 1.0f / 256, 4, DType::BF16), 0.0f);
}
