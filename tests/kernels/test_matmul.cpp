// Every compiled-in and supported kernel table (scalar, avx2, avx512) x every QType x shapes
// with ragged group sizes, row counts that are not multiples of the row tile and token counts
// that are not multiples of the token tile, against the reference kernel (kernels/cpu/ref).
// int8/int4/int2 run twice: with fine activations (ActQuant::Never, the decode kernels) and
// with int8 activations (ActQuant::Always, the long-prefill kernels, where the table has one).
//
// Tolerance per output y[t, o], with m_i >= |every partial product the kernel may form|:
//   |y - y_ref| <= kAtol + 2 * n_in * 2^-24 * sum_i m_i |x_i|     (two f32 sums in any order)
//                + sum_i |s q_i| * amax_b(i) / 254                 (int8 activations)
//                + sum_i |s q_i| * amax_B(i) / 65534               (int16 activations)
//                + sum_i |w_i x_i| / 65536                          (BF16 with vdpbf16ps)
// f32-activation kernels get the first two terms only. The last ones are exact for per-block
// activation rounding: x_i - d*round(x_i/d) is at most d/2 = amax/254 (int8, blocks b of
// act8_block: 32, or act16_block(w) for int4/int2)
// or amax/65534 (int16, blocks B of act16_block(w)), times the integer part of the weight
// s*q_i it multiplies. vdpbf16ps takes x as bf16 hi + lo, within 2^-16 |x_i| of x_i.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "format/convert.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/prepare.h"

namespace qllm {
namespace {

constexpr float kAtol = 1e-6f;
constexpr double kUnitRoundoff = 1.0 / (1 << 24);

struct Case {
  QType qtype;
  bool transposed;
};

const Case kCases[] = {
    {QType::F32, false},   {QType::F16, false},  {QType::BF16, false}, {QType::F32, true},
    {QType::F16, true},    {QType::BF16, true},  {QType::QInt8, false}, {QType::QInt4, false},
    {QType::QInt2, false}, {QType::QFloat8, false},
};

struct Shape {
  int64_t n_in, group_size;  // group_size used by QInt4/QInt2 only
};
// Per-row groups (64, 172: not a multiple of 32), G = 32, 64, 96, 128.
const Shape kShapes[] = {{64, 64}, {172, 172}, {256, 32}, {256, 64}, {288, 96}, {384, 128}, {896, 128}};
const int64_t kRows[] = {1, 7, 33, 257};
// Token counts leave every kind of partial register tile: 1 and 3 alone, 13 and 17 after whole
// tiles of 4, 6 or 8 tokens.
const int64_t kTokens[] = {1, 3, 13, 17};

// A random QTensor in the on-disk layout (owned bytes, random scales and shifts).
QTensor random_tensor(QType q, bool transposed, int64_t n_out, int64_t n_in, int64_t group_size,
                      std::mt19937& rng) {
  QTensor w;
  w.qtype = q;
  w.n_out = n_out;
  w.n_in = n_in;
  w.transposed = transposed;
  if (qtype_info(q).affine) w.group_size = group_size;
  std::uniform_real_distribution<float> val(-1.0f, 1.0f), pos(0.005f, 0.05f);
  std::uniform_int_distribution<int> byte(0, 255);
  w.owned = HugePageBuffer(w.data_bytes());
  auto* d = reinterpret_cast<uint8_t*>(w.owned.data());
  const int64_t n = n_out * n_in;
  switch (q) {
    case QType::F32:
      for (int64_t i = 0; i < n; ++i) {
        const float v = val(rng);
        std::memcpy(d + 4 * i, &v, 4);
      }
      break;
    case QType::F16:
    case QType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = q == QType::F16 ? f32_to_f16(val(rng)) : f32_to_bf16(val(rng));
        std::memcpy(d + 2 * i, &h, 2);
      }
      break;
    case QType::QFloat8:
      for (int64_t i = 0; i < n; ++i) {
        int b;
        do b = byte(rng);
        while ((b & 0x7f) == 0x7f);  // e4m3fn NaN codes, which quanto never writes
        d[i] = static_cast<uint8_t>(b);
      }
      break;
    default:
      for (auto& b : w.owned) b = static_cast<std::byte>(byte(rng));
  }
  w.data = w.owned.data();
  if (q == QType::QInt8 || q == QType::QFloat8) {
    w.scale.resize(n_out);
    for (auto& s : w.scale) s = pos(rng);
  }
  if (qtype_info(q).affine) {
    w.scale.resize(w.n_groups());
    w.shift.resize(w.n_groups());
    for (auto& s : w.scale) s = pos(rng) * 4;
    for (auto& s : w.shift) s = val(rng) * 0.3f;
  }
  return w;
}

// Activations with some structure: a few outliers and an all-zero block (scale 0).
std::vector<float> random_x(int64_t n_tok, int64_t n_in, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 40);
  std::vector<float> x(n_tok * n_in);
  for (auto& v : x) v = nd(rng) * (pick(rng) == 0 ? 20.0f : 1.0f);
  if (n_tok > 1)
    for (int64_t i = 32; i < 64 && i < n_in; ++i) x[n_in + i] = 0.0f;
  return x;
}

// Error bound of one output (see the top of the file).
// Absmax of the `block` holding each element of each token row.
std::vector<float> block_absmax(const std::vector<float>& x, int64_t n_tok, int64_t n_in, int64_t block) {
  std::vector<float> out(x.size());
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < n_in; b += block) {
      float amax = 0.0f;
      for (int64_t j = b; j < b + block && j < n_in; ++j) amax = std::fmax(amax, std::fabs(x[t * n_in + j]));
      for (int64_t j = b; j < b + block && j < n_in; ++j) out[t * n_in + j] = amax;
    }
  return out;
}

// How a kernel rounds activations: amax of each element's block and the divisor of amax that
// bounds the rounding error (254 for int8, 65534 for int16), or none (f32).
struct ActRounding {
  std::vector<float> amax;
  double divisor = 0.0;
};

ActRounding act_rounding(const KernelTable& kt, const QTensor& w, const std::vector<float>& x,
                         int64_t n_tok, bool quantized) {
  if (quantized) return {block_absmax(x, n_tok, w.n_in, act8_block(kt, w)), 254.0};
  const bool int16 = kt.uses_acts[static_cast<int>(w.qtype)] && kt.quantize_acts16 != nullptr && fine16_block(kt, w) > 0;
  if (int16) return {block_absmax(x, n_tok, w.n_in, fine16_block(kt, w)), 65534.0};
  return {std::vector<float>(x.size(), 0.0f), 0.0};
}

double bound(const KernelTable& kt, const QTensor& w, int64_t n_tok, const float* row, int64_t o,
             const float* xt, const float* amax, double divisor) {
  const bool bf16_split = kt.bf16_dot && w.qtype == QType::BF16 && !w.transposed && n_tok == 1;
  double float_mag = 0.0, act_err = 0.0;
  for (int64_t i = 0; i < w.n_in; ++i) {
    double m = std::fabs(row[i]), integer_part = m;
    if (w.qtype == QType::QInt8) m += 128.0 * w.scale[o];
    if (qtype_info(w.qtype).affine) {
      const double shift = w.shift[o * (w.n_in / w.group_size) + i / w.group_size];
      integer_part = std::fabs(row[i] + shift);
      m += 2.0 * std::fabs(shift);
    }
    float_mag += m * std::fabs(xt[i]);
    if (divisor > 0.0) act_err += integer_part * amax[i] / divisor;
    if (bf16_split) act_err += std::fabs(row[i] * xt[i]) / 65536.0;
  }
  return kAtol + 2.0 * static_cast<double>(w.n_in) * kUnitRoundoff * float_mag + act_err * 1.0001;
}

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

class MatmulVsRef : public ::testing::TestWithParam<Isa> {};

TEST_P(MatmulVsRef, EveryQTypeAndShape) {
  const KernelTable* kt = kernel_table(GetParam());
  if (kt == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " not supported here";
  std::mt19937 rng(1234);
  for (const Case& c : kCases) {
    const bool affine = qtype_info(c.qtype).affine;
    int64_t last_n_in = -1;
    for (const Shape& s : kShapes) {
      if (!affine && s.n_in == last_n_in) continue;  // group size only matters for int4/int2
      last_n_in = s.n_in;
      for (int64_t n_out : kRows) {
        if (n_out == 257 && s.n_in > 400) continue;  // keeps the reference cheap
        QTensor w = random_tensor(c.qtype, c.transposed, n_out, s.n_in, s.group_size, rng);
        prepare_for_kernels(w, kernel_layout(*kt, w));  // the layout this table's kernels read
        if (affine) {
          ASSERT_TRUE(is_chunked(w.layout));
        }
        const bool two_kinds = kt->uses_acts[static_cast<int>(c.qtype)];
        std::vector<float> row(s.n_in);
        // Every (policy, n_tok) pair; types with one kernel run once per n_tok.
        for (int run = 0; run < 2 * static_cast<int>(std::size(kTokens)); ++run) {
          const ActQuant policy = run % 2 == 0 ? ActQuant::Never : ActQuant::Always;
          const int64_t n_tok = kTokens[run / 2];
          if (!two_kinds && policy == ActQuant::Always) continue;
          const bool quantized = kernel_accepts(*kt, w) && uses_quantized_acts(*kt, w, n_tok, policy);
          const auto x = random_x(n_tok, s.n_in, rng);
          const ActRounding rounding = act_rounding(*kt, w, x, n_tok, quantized);
          std::vector<float> y(n_tok * n_out, NAN), y_ref(n_tok * n_out);
          matmul(w, x.data(), n_tok, y.data(), pool(), *kt, policy);
          ref::matmul_rows(w, x.data(), n_tok, y_ref.data(), 0, n_out);
          int bad = 0;
          for (int64_t o = 0; o < n_out; ++o) {
            ref::dequantize_row(w, o, row.data());
            for (int64_t t = 0; t < n_tok; ++t) {
              const float a = y[t * n_out + o], r = y_ref[t * n_out + o];
              const double tol = bound(*kt, w, n_tok, row.data(), o, x.data() + t * s.n_in,
                                     rounding.amax.data() + t * s.n_in, rounding.divisor);
              if (!(std::fabs(a - r) <= tol) && bad++ < 5)
                ADD_FAILURE() << isa_name(kt->isa) << " " << qtype_name(c.qtype)
                              << (c.transposed ? " transposed" : "") << " n_out=" << n_out
                              << " n_in=" << s.n_in << " G=" << w.group_size << " n_tok=" << n_tok
                              << (quantized ? " int8 acts" : " fine acts")
                              << ": y[" << t << "," << o << "] = " << a << ", ref " << r
                              << ", |diff| " << std::fabs(a - r) << " > tol " << tol;
            }
          }
          ASSERT_EQ(bad, 0) << "mismatches (first 5 shown)";
        }
      }
    }
  }
}

// Decode over many rows: each thread's range is long enough that the kernels split it into
// parts streamed side by side (tiling.h, tile_rows_split), with rows left over (odd counts), on
// 2 and 3 threads.
TEST_P(MatmulVsRef, DecodeOverLongRanges) {
  const KernelTable* kt = kernel_table(GetParam());
  if (kt == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " not supported here";
  std::mt19937 rng(99);
  ThreadPool three(3);
  for (QType q : {QType::QInt8, QType::QInt4, QType::QInt2})
    for (const Shape& s : {Shape{896, 128}, Shape{768, 128}, Shape{2304, 128}}) {
      const int64_t n_out = 1031;
      QTensor w = random_tensor(q, false, n_out, s.n_in, s.group_size, rng);
      prepare_for_kernels(w, kernel_layout(*kt, w));
      const auto x = random_x(1, s.n_in, rng);
      const ActRounding rounding = act_rounding(*kt, w, x, 1, false);
      std::vector<float> y_ref(n_out), row(s.n_in);
      ref::matmul_rows(w, x.data(), 1, y_ref.data(), 0, n_out);
      for (ThreadPool* p : {&pool(), &three}) {
        std::vector<float> y(n_out, NAN);
        matmul(w, x.data(), 1, y.data(), *p, *kt, ActQuant::Never);
        int bad = 0;
        for (int64_t o = 0; o < n_out; ++o) {
          ref::dequantize_row(w, o, row.data());
          const double tol = bound(*kt, w, 1, row.data(), o, x.data(), rounding.amax.data(), rounding.divisor);
          if (!(std::fabs(y[o] - y_ref[o]) <= tol) && bad++ < 5)
            ADD_FAILURE() << isa_name(kt->isa) << " " << qtype_name(q) << " n_in=" << s.n_in << " threads="
                          << p->size() << ": y[" << o << "] = " << y[o] << ", ref " << y_ref[o];
        }
        ASSERT_EQ(bad, 0) << "mismatches (first 5 shown)";
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Isas, MatmulVsRef, ::testing::ValuesIn(kAllIsas),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// The activation quantizer of each table gives the scalar quantizer's bytes and scales.
TEST(QuantizeActs, SimdMatchesScalar) {
  std::mt19937 rng(7);
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernel_table(isa);
    if (kt == nullptr) continue;
    for (int64_t block : {32, 64, 128})
    for (int64_t n_in : {5, 64, 172, 896}) {
      const int64_t n_tok = 3, unit = std::max<int64_t>(64, block), stride = (n_in + unit - 1) / unit * unit;
      const auto x = random_x(n_tok, n_in, rng);
      std::vector<int8_t> q(n_tok * stride, 99), q_ref(n_tok * stride, 99);
      std::vector<float> ls(n_tok * stride / 4), ls_ref(ls.size()), off(n_tok), off_ref(n_tok);
      kt->quantize_acts(x.data(), n_tok, n_in, block, stride, q.data(), ls.data(), off.data());
      quantize_acts_scalar(x.data(), n_tok, n_in, block, stride, q_ref.data(), ls_ref.data(), off_ref.data());
      EXPECT_EQ(q, q_ref) << isa_name(isa) << " block=" << block << " n_in=" << n_in;
      EXPECT_EQ(ls, ls_ref) << isa_name(isa) << " block=" << block << " n_in=" << n_in;
      for (int64_t t = 0; t < n_tok; ++t) EXPECT_NEAR(off[t], off_ref[t], 1e-5 * (1 + std::fabs(off_ref[t])));
      // The quantization itself: |x - d q| <= d / 2 on real elements, zero padding after.
      for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t i = 0; i < stride; ++i) {
          const float d = ls_ref[t * stride / 4 + i / 4];
          if (i >= n_in) {
            EXPECT_EQ(q_ref[t * stride + i], 0);
            continue;
          }
          EXPECT_LE(std::fabs(x[t * n_in + i] - d * q_ref[t * stride + i]), d * 0.5f * 1.0001f + 1e-30f);
        }
    }
  }
}

// The int16 activation quantizer of each table that has one gives the scalar one's values, and
// those are within d/2 of x (zero padding after n_in).
TEST(QuantizeActs16, SimdMatchesScalar) {
  std::mt19937 rng(8);
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernel_table(isa);
    if (kt == nullptr || kt->quantize_acts16 == nullptr) continue;
    for (int64_t block : {64, 128})
      for (int64_t n_in : {5, 64, 172, 896}) {
        const int64_t n_tok = 3, stride = (n_in + block - 1) / block * block, nb = stride / block;
        const auto x = random_x(n_tok, n_in, rng);
        std::vector<int16_t> q(n_tok * stride, 99), q_ref(n_tok * stride, 99);
        std::vector<float> d(n_tok * nb), d_ref(n_tok * nb);
        kt->quantize_acts16(x.data(), n_tok, n_in, block, stride, q.data(), d.data());
        quantize_acts16_scalar(x.data(), n_tok, n_in, block, stride, q_ref.data(), d_ref.data());
        EXPECT_EQ(q, q_ref) << isa_name(isa) << " block=" << block << " n_in=" << n_in;
        EXPECT_EQ(d, d_ref) << isa_name(isa) << " block=" << block << " n_in=" << n_in;
        for (int64_t t = 0; t < n_tok; ++t)
          for (int64_t i = 0; i < stride; ++i) {
            const float s = d_ref[t * nb + i / block];
            if (i >= n_in) {
              EXPECT_EQ(q_ref[t * stride + i], 0);
              continue;
            }
            EXPECT_LE(std::fabs(x[t * n_in + i] - s * q_ref[t * stride + i]), s * 0.5f * 1.0001f + 1e-30f);
          }
      }
  }
}

// Repacking keeps every dequantized value, for every ragged group size, in both layouts.
TEST(PrepareForKernels, RoundTripKeepsValues) {
  std::mt19937 rng(99);
  for (Layout layout : {Layout::RowChunked, Layout::Interleaved16})
  for (QType q : {QType::QInt4, QType::QInt2})
    for (const Shape& s : kShapes)
      for (int64_t n_out : {1, 7, 33}) {
        QTensor w = random_tensor(q, false, n_out, s.n_in, s.group_size, rng);
        std::vector<float> before(n_out * s.n_in), after(n_out * s.n_in);
        for (int64_t o = 0; o < n_out; ++o) ref::dequantize_row(w, o, before.data() + o * s.n_in);
        prepare_for_kernels(w, layout);
        ASSERT_EQ(w.layout, layout);
        EXPECT_EQ(w.data, w.owned.data());
        const int64_t rows = layout == Layout::Interleaved16 ? (n_out + 15) / 16 * 16 : n_out;
        EXPECT_EQ(static_cast<int64_t>(w.owned.size()), chunk_geometry(w).row_bytes * rows);
        for (int64_t o = 0; o < n_out; ++o) ref::dequantize_row(w, o, after.data() + o * s.n_in);
        EXPECT_EQ(before, after) << qtype_name(q) << " n_in=" << s.n_in << " G=" << s.group_size;
        prepare_for_kernels(w, Layout::RowChunked);  // idempotent: already repacked
        EXPECT_EQ(w.layout, layout);
        for (int64_t o = 0; o < n_out; ++o) ref::dequantize_row(w, o, after.data() + o * s.n_in);
        EXPECT_EQ(before, after);
      }
}

// Interleaved16 puts bytes [4j, 4j + 4) of row o at word j * 16 + o % 16 of its tile: checked
// here on bytes of a RowChunked copy, so the layout is what the AVX-512 kernels assume.
TEST(PrepareForKernels, Interleaved16IsRowChunkedWordsTransposed) {
  std::mt19937 rng(11);
  const QTensor w0 = random_tensor(QType::QInt4, false, 21, 256, 128, rng);
  QTensor rows = w0, tiles = w0;
  prepare_for_kernels(rows, Layout::RowChunked);
  prepare_for_kernels(tiles, Layout::Interleaved16);
  const int64_t rb = chunk_geometry(w0).row_bytes;
  for (int64_t o = 0; o < 32; ++o)
    for (int64_t p = 0; p < rb; ++p) {
      const auto expect = o < 21 ? rows.data[o * rb + p] : std::byte{0};
      ASSERT_EQ(tiles.data[o / 16 * 16 * rb + (p / 4 * 16 + o % 16) * 4 + p % 4], expect) << o << " " << p;
    }
}

// A group size the chunked layout cannot hold stays planar and still computes (reference).
TEST(PrepareForKernels, UnsupportedGroupSizeFallsBack) {
  std::mt19937 rng(5);
  QTensor w = random_tensor(QType::QInt4, false, 9, 96, 48, rng);
  prepare_for_kernels(w);
  EXPECT_EQ(w.layout, Layout::QuantoPlanar);
  const auto x = random_x(2, 96, rng);
  std::vector<float> y(18), y_ref(18);
  matmul(w, x.data(), 2, y.data(), pool());
  ref::matmul_rows(w, x.data(), 2, y_ref.data(), 0, 9);
  EXPECT_EQ(y, y_ref);
}

TEST(Linear, AddsBiasPerToken) {
  std::mt19937 rng(3);
  Linear l;
  l.w = random_tensor(QType::F32, false, 5, 16, 0, rng);
  l.bias = {1, 2, 3, 4, 5};
  const auto x = random_x(2, 16, rng);
  std::vector<float> y(10), y_ref(10);
  linear(l, x.data(), 2, y.data(), pool());
  ref::matmul_rows(l.w, x.data(), 2, y_ref.data(), 0, 5);
  for (int t = 0; t < 2; ++t)
    for (int o = 0; o < 5; ++o) EXPECT_NEAR(y[t * 5 + o], y_ref[t * 5 + o] + l.bias[o], 1e-4);
}

// Matmuls of one x run jointly (one activation preparation where the kernels share it, rows split
// over the threads together) give exactly what separate matmul() calls give, for sets that
// share activations (q, k, v of one type and group size, row counts off the tile) and sets that
// do not (mixed types, a group size without a fast kernel).
TEST(MatmulSameInput, EqualsSeparateMatmuls) {
  std::mt19937 rng(12);
  struct Out {
    QType q;
    int64_t n_out, group_size;
  };
  const std::vector<std::vector<Out>> sets = {
      {{QType::QInt4, 40, 128}, {QType::QInt4, 16, 128}, {QType::QInt4, 7, 128}},
      {{QType::QInt8, 33, 0}, {QType::QInt8, 48, 0}},
      {{QType::QInt4, 24, 96}, {QType::QInt4, 5, 96}},
      {{QType::QInt8, 20, 0}, {QType::QInt4, 17, 64}, {QType::BF16, 9, 0}, {QType::QInt4, 3, 48}},
  };
  const int64_t n_in = 384;
  for (Isa isa : kAllIsas) {
    const KernelTable* kt = kernel_table(isa);
    if (kt == nullptr) continue;
    for (const auto& set : sets) {
      std::vector<QTensor> ws;
      for (const Out& o : set) {
        ws.push_back(random_tensor(o.q, false, o.n_out, n_in, o.group_size, rng));
        prepare_for_kernels(ws.back(), kernel_layout(*kt, ws.back()));
      }
      for (int64_t n_tok : {1, 5, 40})
        for (ActQuant policy : {ActQuant::Never, ActQuant::Always}) {
          const auto x = random_x(n_tok, n_in, rng);
          std::vector<std::vector<float>> y(ws.size()), y_ref(ws.size());
          std::vector<MatmulOut> outs;
          for (std::size_t j = 0; j < ws.size(); ++j) {
            y[j].assign(n_tok * ws[j].n_out, -1.0f);
            y_ref[j].assign(n_tok * ws[j].n_out, -2.0f);
            matmul(ws[j], x.data(), n_tok, y_ref[j].data(), pool(), *kt, policy);
            outs.push_back({&ws[j], y[j].data()});
          }
          matmul_same_input(outs, x.data(), n_tok, pool(), *kt, policy);
          for (std::size_t j = 0; j < ws.size(); ++j)
            EXPECT_EQ(y[j], y_ref[j]) << isa_name(isa) << " output " << j << " of " << ws.size() << ", " << n_tok
                                      << " tokens";
        }
    }
  }
}

// Every SIMD table has a fine kernel for int8/int4/int2 and, where it has an int8-activation
// kernel too (all but AVX2 int8), the policy picks fine activations below kActQuantMinTokens
// tokens, int8 from there on, unless forced.
TEST(Dispatch, ActivationPolicy) {
  std::mt19937 rng(11);
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    const KernelTable* kt = kernel_table(isa);
    if (kt == nullptr) continue;
    for (QType q : {QType::QInt8, QType::QInt4, QType::QInt2}) {
      QTensor w = random_tensor(q, false, 4, 256, 64, rng);
      prepare_for_kernels(w, kernel_layout(*kt, w));
      ASSERT_TRUE(kernel_accepts(*kt, w));
      ASSERT_NE(kt->rows_fine[static_cast<int>(q)], nullptr) << isa_name(isa) << " " << qtype_name(q);
      const bool has_int8 = kt->rows[static_cast<int>(q)] != nullptr;
      EXPECT_EQ(has_int8, isa == Isa::Avx512 || q != QType::QInt8) << isa_name(isa) << " " << qtype_name(q);
      EXPECT_FALSE(uses_quantized_acts(*kt, w, 1, ActQuant::Auto));
      EXPECT_FALSE(uses_quantized_acts(*kt, w, kActQuantMinTokens - 1, ActQuant::Auto));
      EXPECT_EQ(uses_quantized_acts(*kt, w, kActQuantMinTokens, ActQuant::Auto), has_int8);
      EXPECT_FALSE(uses_quantized_acts(*kt, w, 512, ActQuant::Never));
      EXPECT_EQ(uses_quantized_acts(*kt, w, 1, ActQuant::Always), has_int8);
      // Auto at decode runs the same kernel as Never.
      const auto x = random_x(1, 256, rng);
      std::vector<float> y_auto(4), y_never(4);
      matmul(w, x.data(), 1, y_auto.data(), pool(), *kt, ActQuant::Auto);
      matmul(w, x.data(), 1, y_never.data(), pool(), *kt, ActQuant::Never);
      EXPECT_EQ(y_auto, y_never);
    }
    // int4/int2 take int8 activations per int16 block: a group size without one (96) has no
    // int8-activation kernel.
    QTensor g96 = random_tensor(QType::QInt4, false, 4, 288, 96, rng);
    prepare_for_kernels(g96, kernel_layout(*kt, g96));
    EXPECT_EQ(act16_block(g96), 0);
    EXPECT_FALSE(uses_quantized_acts(*kt, g96, 512, ActQuant::Always));
    QTensor f = random_tensor(QType::QFloat8, false, 4, 64, 0, rng);
    EXPECT_FALSE(uses_quantized_acts(*kt, f, 512, ActQuant::Always));  // float8 reads f32 x always
  }
}

TEST(Dispatch, ActiveIsaIsSupported) {
  const std::string name = active_isa();
  bool found = false;
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) {
      found = true;
      EXPECT_TRUE(isa_supported(isa));
      EXPECT_NE(kernel_table(isa), nullptr);
    }
  EXPECT_TRUE(found) << name;
  EXPECT_TRUE(isa_supported(Isa::Scalar));
}

}  // namespace
}  // namespace qllm
