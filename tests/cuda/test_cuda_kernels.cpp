// CUDA kernels against the CPU reference (kernels/cpu/ref, runtime/ops): every weight type,
// ragged group sizes (32, 64, 96, 128, per row), row counts that do not fill a block, one token
// and several, and the other ops of the forward pass. The GPU layout itself (gpu_layout.h) is
// checked on every machine; the kernel tests skip when no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "format/convert.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/prepare.h"
#include "kernels/cuda/gpu_layout.h"
#include "runtime/ops.h"

#ifdef QLLM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cublas_loader.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"
#endif

namespace qllm {
namespace {

// ---- random weights ----

struct Shape {
  int64_t n_out, n_in, group;  // group: QInt4/QInt2 group size (n_in = per row)
};

QTensor random_qtensor(QType q, const Shape& s, bool chunked, std::mt19937& rng) {
  QTensor w;
  w.qtype = q;
  w.n_out = s.n_out;
  w.n_in = s.n_in;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const bool packed = q == QType::QInt4 || q == QType::QInt2;
  if (packed) w.group_size = s.group;
  HugePageBuffer bytes(static_cast<std::size_t>(w.data_bytes()));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    switch (q) {
      case QType::F32: {
        const float f = u(rng);
        if (i % 4 == 0) std::memcpy(&bytes[i], &f, 4);
        break;
      }
      case QType::F16:
      case QType::BF16: {
        const uint16_t h = q == QType::F16 ? f32_to_f16(u(rng)) : f32_to_bf16(u(rng));
        if (i % 2 == 0) std::memcpy(&bytes[i], &h, 2);
        break;
      }
      case QType::QFloat8: {
        uint8_t b = static_cast<uint8_t>(rng());
        if ((b & 0x7F) == 0x7F) b = 0x10;  // no NaN codes
        bytes[i] = std::byte{b};
        break;
      }
      default: bytes[i] = std::byte{static_cast<uint8_t>(rng())};
    }
  }
  w.owned = std::move(bytes);
  w.data = w.owned.data();
  if (q == QType::QInt8 || q == QType::QFloat8) {
    for (int64_t o = 0; o < s.n_out; ++o) w.scale.push_back(0.01f + 0.01f * std::abs(u(rng)));
  } else if (packed) {
    for (int64_t g = 0; g < w.n_groups(); ++g) {
      w.scale.push_back(0.05f + 0.05f * std::abs(u(rng)));
      w.shift.push_back(0.5f * u(rng));
    }
    if (chunked) prepare_for_kernels(w);
  }
  return w;
}

[[maybe_unused]] std::vector<float> random_vec(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

constexpr QType kAllTypes[] = {QType::F32, QType::F16, QType::BF16, QType::QInt8,
                               QType::QFloat8, QType::QInt4, QType::QInt2};

// Shapes: per-row groups of 64 and 172 (stories260K's FFN width), and G = 32, 64, 96, 128 on
// rows of 384; output rows not a multiple of the 8 rows of a GEMV block.
const Shape kShapes[] = {{37, 64, 64}, {21, 172, 172}, {67, 384, 32},
                         {129, 384, 64}, {8, 384, 96}, {45, 384, 128}};

// ---- the layout, on any machine ----

TEST(CudaLayout, EveryWeightMatchesReferenceDequantization) {
  std::mt19937 rng(7);
  for (QType q : kAllTypes)
    for (const Shape& s : kShapes)
      // Every layout the CPU side may hand over (prepare_for_kernels picks one per ISA).
      for (Layout layout : {Layout::QuantoPlanar, Layout::RowChunked, Layout::Interleaved16}) {
        QTensor w = random_qtensor(q, s, false, rng);
        prepare_for_kernels(w, layout);
        ASSERT_TRUE(cuda::gpu_supports(w));
        const cuda::GpuLayout l = cuda::gpu_layout(w);
        std::vector<float> row(static_cast<std::size_t>(w.n_in));
        for (int64_t o = 0; o < w.n_out; ++o) {
          ref::dequantize_row(w, o, row.data());
          for (int64_t i = 0; i < w.n_in; ++i)
            ASSERT_EQ(cuda::gpu_layout_value(l, o, i), row[i])
                << qtype_name(q) << " G=" << s.group << " layout " << static_cast<int>(w.layout)
                << " (" << o << ", " << i << ")";
        }
      }
}

TEST(CudaLayout, TransposedFloatWeights) {
  std::mt19937 rng(8);
  QTensor w = random_qtensor(QType::F32, {24, 40, 0}, false, rng);
  w.transposed = true;  // the same bytes read as [n_in, n_out]
  const cuda::GpuLayout l = cuda::gpu_layout(w);
  std::vector<float> row(40);
  for (int64_t o = 0; o < 24; ++o) {
    ref::dequantize_row(w, o, row.data());
    for (int64_t i = 0; i < 40; ++i) ASSERT_EQ(cuda::gpu_layout_value(l, o, i), row[i]);
  }
}

#ifdef QLLM_HAVE_CUDA

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_DEVICE() \
  if (!have_device()) GTEST_SKIP() << "no CUDA device"

// Owns one device buffer.
template <typename T>
struct Dev {
  T* p = nullptr;
  int64_t n = 0;
  explicit Dev(int64_t count) : n(count) {
    QLLM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), static_cast<std::size_t>(count) * sizeof(T)));
    QLLM_CUDA_CHECK(cudaMemset(p, 0, static_cast<std::size_t>(count) * sizeof(T)));
  }
  Dev(const std::vector<T>& v) : Dev(static_cast<int64_t>(v.size())) {
    QLLM_CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(static_cast<std::size_t>(n));
    QLLM_CUDA_CHECK(cudaDeviceSynchronize());
    QLLM_CUDA_CHECK(cudaMemcpy(v.data(), p, v.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

struct DevMatrix {
  cuda::GpuLayout lay;
  Dev<uint8_t> data;
  Dev<float> scale, shift;
  cuda::GpuMatrix m;
  explicit DevMatrix(const QTensor& w)
      : lay(cuda::gpu_layout(w)),
        data(std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(lay.data.data()),
                                  reinterpret_cast<const uint8_t*>(lay.data.data()) + lay.data.size())),
        scale(lay.scale.empty() ? std::vector<float>{0} : lay.scale),
        shift(lay.shift.empty() ? std::vector<float>{0} : lay.shift) {
    m.qtype = lay.qtype;
    m.n_out = lay.n_out;
    m.n_in = lay.n_in;
    m.ld = lay.ld;
    m.group_size = lay.group_size;
    m.data = data.p;
    m.scale = scale.p;
    m.shift = shift.p;
  }
};

// Activations [n_tok, ld] with zero padding, as the session keeps them.
std::vector<float> padded(const std::vector<float>& x, int64_t n_tok, int64_t n_in, int64_t ld) {
  std::vector<float> p(static_cast<std::size_t>(n_tok * ld), 0.0f);
  for (int64_t t = 0; t < n_tok; ++t)
    std::copy(x.begin() + t * n_in, x.begin() + (t + 1) * n_in, p.begin() + t * ld);
  return p;
}

// f32 dot products of length n in any summation order differ by at most n * 2^-24 * sum|w x|
// (Higham's gamma_n); dequantizing with one FMA instead of a multiply and a subtract adds one
// rounding per weight, so 2 * n * 2^-24 bounds the GEMV/SGEMM difference from the reference.
double f32_bound(int64_t n_in, double abs_sum) { return 2.0 * n_in * std::ldexp(1.0, -24) * abs_sum + 1e-30; }
// bf16 operands (8-bit mantissas): relative L2 error between 1e-3 and 1e-2 (METHOD.md's bf16 range).
constexpr double kBf16RelL2 = 1e-2;

struct MatmulCase {
  std::vector<float> x, ref, abs_sum;
};

MatmulCase reference(const QTensor& w, int64_t n_tok, std::mt19937& rng) {
  MatmulCase c;
  c.x = random_vec(n_tok * w.n_in, rng);
  c.ref.resize(static_cast<std::size_t>(n_tok * w.n_out));
  ref::matmul_rows(w, c.x.data(), n_tok, c.ref.data(), 0, w.n_out);
  std::vector<float> row(static_cast<std::size_t>(w.n_in));
  c.abs_sum.resize(c.ref.size());
  for (int64_t o = 0; o < w.n_out; ++o) {
    ref::dequantize_row(w, o, row.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      double s = 0;
      for (int64_t i = 0; i < w.n_in; ++i) s += std::abs(double(row[i]) * c.x[t * w.n_in + i]);
      c.abs_sum[t * w.n_out + o] = static_cast<float>(s);
    }
  }
  return c;
}

TEST(CudaKernels, GemvMatchesReferenceForEveryTypeAndShape) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(11);
  for (QType q : kAllTypes)
    for (const Shape& s : kShapes)
      for (int64_t n_tok : {1, 2, 3, 8}) {
        const QTensor w = random_qtensor(q, s, /*chunked=*/n_tok % 2 == 1, rng);
        DevMatrix dm(w);
        const MatmulCase c = reference(w, n_tok, rng);
        Dev<float> x(padded(c.x, n_tok, w.n_in, dm.m.ld));
        const int64_t ld_y = w.n_out + 3;
        Dev<float> y(std::vector<float>(static_cast<std::size_t>(n_tok * ld_y), NAN));  // poisoned
        cuda::GemvPart part{dm.m, y.p, ld_y};
        cuda::gemv(&part, 1, x.p, dm.m.ld, n_tok, false, nullptr);
        const auto out = y.get();
        int bad = 0;
        for (int64_t t = 0; t < n_tok; ++t)
          for (int64_t o = 0; o < w.n_out; ++o) {
            const double r = c.ref[t * w.n_out + o], g = out[t * ld_y + o];
            const double tol = f32_bound(w.n_in, c.abs_sum[t * w.n_out + o]);
            if (!(std::abs(g - r) <= tol) && bad++ < 10)
              ADD_FAILURE() << qtype_name(q) << " G=" << s.group << " n_out=" << w.n_out << " n_in=" << w.n_in
                            << " n_tok=" << n_tok << " [" << t << ", " << o << "]: " << g << " vs " << r
                            << " (tol " << tol << ")";
          }
      }
}

TEST(CudaKernels, GemvAccumulatesAndAddsBiasOverSeveralParts) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(12);
  const QTensor a = random_qtensor(QType::QInt8, {19, 128, 0}, false, rng);
  const QTensor b = random_qtensor(QType::QInt8, {5, 128, 0}, false, rng);
  DevMatrix da(a), db(b);
  const auto bias = random_vec(5, rng);
  Dev<float> dbias(bias);
  db.m.bias = dbias.p;
  const MatmulCase ca = reference(a, 2, rng);
  std::vector<float> rb(10);
  ref::matmul_rows(b, ca.x.data(), 2, rb.data(), 0, 5);
  Dev<float> x(padded(ca.x, 2, 128, 128));
  const auto y0 = random_vec(2 * 24, rng);
  Dev<float> y(y0);  // [2, 24]: a's 19 outputs then b's 5
  const cuda::GemvPart parts[2] = {{da.m, y.p, 24}, {db.m, y.p + 19, 24}};
  cuda::gemv(parts, 2, x.p, 128, 2, /*accumulate=*/true, nullptr);
  const auto out = y.get();
  for (int t = 0; t < 2; ++t) {
    for (int o = 0; o < 19; ++o)
      EXPECT_NEAR(out[t * 24 + o], y0[t * 24 + o] + ca.ref[t * 19 + o], 1e-4);
    for (int o = 0; o < 5; ++o)
      EXPECT_NEAR(out[t * 24 + 19 + o], y0[t * 24 + 19 + o] + rb[t * 5 + o] + bias[o], 1e-4);
  }
}

TEST(CudaKernels, GemmMatchesReference) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(13);
  cuda::GemmWorkspace ws;
  QLLM_CUBLAS_CHECK(cuda::cublas().create(&ws.handle));
  Dev<uint8_t> wbuf(1 << 16);  // small on purpose: forces several row blocks
  Dev<uint16_t> xbuf(70 * 384);
  ws.w_buf = wbuf.p;
  ws.w_bytes = wbuf.n;
  ws.x_bf16 = xbuf.p;
  ws.x_elems = xbuf.n;
  for (bool exact : {false, true})
    for (QType q : kAllTypes)
      for (const Shape& s : kShapes)
        for (int64_t n_tok : {9, 70}) {
          ws.exact = exact;
          const QTensor w = random_qtensor(q, s, true, rng);
          DevMatrix dm(w);
          const MatmulCase c = reference(w, n_tok, rng);
          Dev<float> x(padded(c.x, n_tok, w.n_in, dm.m.ld));
          Dev<float> y(std::vector<float>(static_cast<std::size_t>(n_tok * w.n_out), NAN));
          cuda::gemm(dm.m, x.p, dm.m.ld, n_tok, y.p, w.n_out, false, ws, nullptr);
          const auto out = y.get();
          const bool f32_path = exact || q == QType::F32 || q == QType::F16;
          double num = 0, den = 0;
          int bad = 0;
          for (std::size_t i = 0; i < out.size(); ++i) {
            num += (out[i] - c.ref[i]) * double(out[i] - c.ref[i]);
            den += double(c.ref[i]) * c.ref[i];
            // SGEMM may use any summation order (and split K): same gamma bound as the GEMV.
            if (f32_path && !(std::abs(out[i] - c.ref[i]) <= f32_bound(w.n_in, c.abs_sum[i])) && bad++ < 5)
              ADD_FAILURE() << qtype_name(q) << " exact=" << exact << " G=" << s.group << " n_tok=" << n_tok
                            << " i=" << i << ": " << out[i] << " vs " << c.ref[i];
          }
          EXPECT_LE(std::sqrt(num / den), f32_path ? 1e-5 : kBf16RelL2)
              << qtype_name(q) << " G=" << s.group << " n_tok=" << n_tok;
        }
  cuda::cublas().destroy(ws.handle);
}

TEST(CudaKernels, NormsMatchCpuOps) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(14);
  for (int64_t dim : {8, 172, 896})
    for (bool ln : {false, true}) {
      const int64_t n = 3, ld = cuda::gpu_ld(dim);
      const auto x = random_vec(n * dim, rng, 3.0f);
      NormWeights nw{random_vec(dim, rng), ln ? random_vec(dim, rng) : std::vector<float>{}};
      Dev<float> dx(padded(x, n, dim, ld)), dw(nw.w), db(ln ? nw.b : std::vector<float>{0}), dy(n * ld);
      cuda::norm_rows(ln, dx.p, ld, n, dim, dw.p, ln ? db.p : nullptr, 1e-5f, dy.p, ld, nullptr);
      const auto out = dy.get();
      std::vector<float> ref(static_cast<std::size_t>(dim));
      for (int64_t t = 0; t < n; ++t) {
        if (ln) ops::layer_norm(x.data() + t * dim, nw, dim, 1e-5f, ref.data());
        else ops::rms_norm(x.data() + t * dim, nw, dim, 1e-5f, ref.data());
        // Same double accumulation; the final float products may round differently by 1 ulp.
        for (int64_t i = 0; i < dim; ++i) ASSERT_NEAR(out[t * ld + i], ref[i], 2e-6 * (1 + std::abs(ref[i])));
      }
    }
}

TEST(CudaKernels, RopeStoreAndAttentionMatchCpuOps) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(15);
  struct Cfg { int64_t n_head, n_head_kv, head_dim; };
  for (const Cfg& cfg : {Cfg{8, 4, 8}, Cfg{4, 2, 64}, Cfg{14, 2, 64}, Cfg{4, 4, 128}, Cfg{2, 1, 256}})
    for (bool rope : {true, false}) {
      const int64_t qd = cfg.n_head * cfg.head_dim, kvd = cfg.n_head_kv * cfg.head_dim, half = cfg.head_dim / 2;
      const int64_t n_ctx = 40, pos0 = 29, n = 5;  // tokens at positions 29..33; earlier ones cached
      const int64_t ld_qkv = cuda::gpu_ld(qd + 2 * kvd), ld_att = cuda::gpu_ld(qd);
      std::vector<float> cs(n_ctx * half), sn(n_ctx * half);
      ops::rope_tables(10000.0f, RopeScaling{}, cfg.head_dim, n_ctx, cs.data(), sn.data());
      auto kc = random_vec(n_ctx * kvd, rng), vc = random_vec(n_ctx * kvd, rng);
      const auto qkv = random_vec(n * ld_qkv, rng, 2.0f);
      Dev<float> dqkv(qkv), dkc(kc), dvc(vc), dcs(cs), dsn(sn), datt(n * ld_att);
      Dev<int32_t> dpos(std::vector<int32_t>{static_cast<int32_t>(pos0)});
      cuda::rope_store_kv(dqkv.p, ld_qkv, n, cfg.n_head, cfg.n_head_kv, cfg.head_dim, rope ? dcs.p : nullptr,
                          rope ? dsn.p : nullptr, dpos.p, dkc.p, dvc.p, nullptr);
      cuda::attention(dqkv.p, ld_qkv, dkc.p, dvc.p, kvd, dpos.p, n, cfg.n_head, cfg.n_head_kv, cfg.head_dim,
                      datt.p, ld_att, nullptr);
      const auto att = datt.get();
      const auto kc_gpu = dkc.get();
      // CPU: the same steps with runtime/ops.
      std::vector<float> q(n * qd);
      for (int64_t t = 0; t < n; ++t) {
        std::copy(qkv.begin() + t * ld_qkv, qkv.begin() + t * ld_qkv + qd, q.begin() + t * qd);
        std::copy(qkv.begin() + t * ld_qkv + qd, qkv.begin() + t * ld_qkv + qd + kvd, kc.begin() + (pos0 + t) * kvd);
        std::copy(qkv.begin() + t * ld_qkv + qd + kvd, qkv.begin() + t * ld_qkv + qd + 2 * kvd,
                  vc.begin() + (pos0 + t) * kvd);
        if (rope) {
          ops::rope(q.data() + t * qd, cfg.n_head, cfg.head_dim, cs.data() + (pos0 + t) * half, sn.data() + (pos0 + t) * half);
          ops::rope(kc.data() + (pos0 + t) * kvd, cfg.n_head_kv, cfg.head_dim, cs.data() + (pos0 + t) * half,
                    sn.data() + (pos0 + t) * half);
        }
      }
      for (std::size_t i = 0; i < kc.size(); ++i) ASSERT_NEAR(kc_gpu[i], kc[i], 1e-6) << "k cache " << i;
      std::vector<float> scores(n_ctx), out(cfg.head_dim);
      const float scale = 1.0f / std::sqrt(static_cast<float>(cfg.head_dim));
      const int64_t group = cfg.n_head / cfg.n_head_kv;
      for (int64_t t = 0; t < n; ++t)
        for (int64_t h = 0; h < cfg.n_head; ++h) {
          ops::attend(q.data() + t * qd + h * cfg.head_dim, kc.data() + (h / group) * cfg.head_dim,
                      vc.data() + (h / group) * cfg.head_dim, kvd, pos0 + t + 1, cfg.head_dim, scale, scores.data(),
                      out.data());
          for (int64_t d = 0; d < cfg.head_dim; ++d)
            ASSERT_NEAR(att[t * ld_att + h * cfg.head_dim + d], out[d], 1e-5)
                << "hd=" << cfg.head_dim << " t=" << t << " h=" << h << " d=" << d;
        }
    }
}

TEST(CudaKernels, ActivationsMatchCpuOps) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(16);
  const int64_t n = 3, cols = 100, ld = 128;
  const std::pair<cuda::GpuAct, Activation> acts[] = {{cuda::GpuAct::GeluTanh, Activation::GeluTanh},
                                                      {cuda::GpuAct::GeluErf, Activation::GeluErf},
                                                      {cuda::GpuAct::Silu, Activation::Silu}};
  for (auto [ga, ca] : acts) {
    const auto g = random_vec(n * cols, rng, 6.0f), u = random_vec(n * cols, rng, 2.0f);
    Dev<float> dg(padded(g, n, cols, ld)), du(padded(u, n, cols, ld)), dh(padded(g, n, cols, ld));
    cuda::activate_mul(ga, dg.p, du.p, ld, n, cols, nullptr);
    cuda::activate(ga, dh.p, ld, n, cols, nullptr);
    const auto og = dg.get(), oh = dh.get();
    auto rg = g, rh = g;
    ops::activate_mul(ca, rg.data(), u.data(), n * cols);
    ops::activate(ca, rh.data(), n * cols);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < cols; ++i) {
        // CUDA's tanhf/erff/expf are within 2 ulp of the correctly rounded value.
        ASSERT_NEAR(og[t * ld + i], rg[t * cols + i], 1e-6 * (1 + std::abs(rg[t * cols + i])));
        ASSERT_NEAR(oh[t * ld + i], rh[t * cols + i], 1e-6 * (1 + std::abs(rh[t * cols + i])));
      }
    EXPECT_EQ(og[cols], 0.0f) << "padding must stay 0";
  }
}

TEST(CudaKernels, ArgmaxTakesTheFirstMaximum) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(17);
  for (int64_t n : {1, 5, 1000, 151936}) {
    auto x = random_vec(n, rng);
    const int64_t a = n / 3, b = n - 1;  // two equal maxima: the first wins, as std::max_element
    x[a] = 5.0f;
    x[b] = 5.0f;
    Dev<float> dx(x);
    Dev<int32_t> out(1), pos(std::vector<int32_t>{41});
    cuda::argmax(dx.p, n, out.p, pos.p, nullptr);
    EXPECT_EQ(out.get()[0], std::max_element(x.begin(), x.end()) - x.begin()) << n;
    EXPECT_EQ(pos.get()[0], 42);
  }
}

#endif  // QLLM_HAVE_CUDA

}  // namespace
}  // namespace qllm
