#include "quant/quantizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "format/convert.h"
#include "quant/packing.h"
#include "util/error.h"

namespace qllm {

// ---- names and rules ----

std::optional<WeightOptimizer> optimizer_from_name(std::string_view name) {
  if (name == "absmax") return WeightOptimizer::Absmax;
  if (name == "max") return WeightOptimizer::Max;
  if (name == "search") return WeightOptimizer::Search;
  if (name == "hqq") return WeightOptimizer::Hqq;
  return std::nullopt;
}

std::string_view optimizer_name(WeightOptimizer o) {
  switch (o) {
    case WeightOptimizer::Absmax: return "absmax";
    case WeightOptimizer::Max: return "max";
    case WeightOptimizer::Search: return "search";
    case WeightOptimizer::Hqq: return "hqq";
  }
  return "?";
}

WeightOptimizer default_optimizer(QType q) {
  return qtype_info(q).affine ? WeightOptimizer::Max : WeightOptimizer::Absmax;
}

bool optimizer_fits(WeightOptimizer o, QType q) {
  return qtype_info(q).affine ? o != WeightOptimizer::Absmax : o == WeightOptimizer::Absmax;
}

std::optional<int64_t> quanto_group_size(int64_t n_in) {
  int64_t g = 128;
  if (n_in <= g) return std::nullopt;
  while (n_in % g != 0 && g > 32) g -= 32;
  if (n_in % g == 0) return g;
  return std::nullopt;
}

void WeightView::load(int64_t o, int64_t i0, int64_t n, float* out) const {
  const std::size_t es = dtype_size(dtype);
  if (!transposed) {
    to_f32(dtype, data + (o * n_in + i0) * static_cast<int64_t>(es), {out, static_cast<std::size_t>(n)});
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    to_f32(dtype, data + ((i0 + i) * n_out + o) * static_cast<int64_t>(es), {out + i, 1});
}

int64_t n_scale_rows(const QuantSpec& s, int64_t n_out, int64_t n_in) {
  return qtype_info(s.qtype).affine ? n_out * n_in / s.group_size : n_out;
}

uint64_t quantized_bytes(const QuantSpec& s, int64_t n_out, int64_t n_in) {
  auto shape = quantized_shape(s, n_out, n_in);
  return static_cast<uint64_t>(shape[0]) * static_cast<uint64_t>(shape[1]);
}

std::array<int64_t, 2> quantized_shape(const QuantSpec& s, int64_t n_out, int64_t n_in) {
  if (!qtype_info(s.qtype).affine) return {n_out, n_in};
  return {packed_rows(n_out * n_in / s.group_size, qtype_info(s.qtype).bits), s.group_size};
}

// ---- error statistics ----

void QuantError::merge(const QuantError& o) {
  sum_sq_w += o.sum_sq_w;
  sum_sq_err += o.sum_sq_err;
  max_abs = std::max(max_abs, o.max_abs);
  n += o.n;
}

double QuantError::rmse() const { return n ? std::sqrt(sum_sq_err / static_cast<double>(n)) : 0.0; }

double QuantError::sqnr_db() const {
  if (sum_sq_err == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(sum_sq_w / sum_sq_err);
}

namespace {

inline void add_error(QuantError& e, float w, float deq) {
  const double d = static_cast<double>(deq) - static_cast<double>(w);
  e.sum_sq_w += static_cast<double>(w) * w;
  e.sum_sq_err += d * d;
  e.max_abs = std::max(e.max_abs, std::fabs(d));
  e.n += 1;
}

// Error of one int8 row (deq = scale * q), in float with four independent lanes; folded into
// the double totals once per row.
inline void add_row_error(QuantError& e, const float* w, const int8_t* q, float scale, int64_t n) {
  float sw[4] = {0, 0, 0, 0}, se[4] = {0, 0, 0, 0}, mx[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) {
      const float x = w[i + l], d = scale * static_cast<float>(q[i + l]) - x;
      sw[l] += x * x;
      se[l] += d * d;
      mx[l] = std::fabs(d) > mx[l] ? std::fabs(d) : mx[l];
    }
  for (; i < n; ++i) {
    const float x = w[i], d = scale * static_cast<float>(q[i]) - x;
    sw[0] += x * x;
    se[0] += d * d;
    mx[0] = std::fabs(d) > mx[0] ? std::fabs(d) : mx[0];
  }
  for (int l = 0; l < 4; ++l) {
    e.sum_sq_w += sw[l];
    e.sum_sq_err += se[l];
    e.max_abs = std::max<double>(e.max_abs, mx[l]);
  }
  e.n += static_cast<uint64_t>(n);
}

inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Round half to even (torch.round) without a libm call: adding and subtracting 1.5 * 2^23 rounds
// to an integer in the default rounding mode for |v| < 2^22; larger values are integers already.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return std::fabs(v) < 4194304.0f ? (v + kMagic) - kMagic : v;
}

// round_to() with the dtype fixed at compile time, for the inner loops.
template <DType D>
inline float rt(float x) {
  if constexpr (D == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  else if constexpr (D == DType::F16) return f16_to_f32(f32_to_f16(x));
  else return x;
}

template <DType D>
inline int8_t q8_value(float w, float scale) {
  const float v = rt<D>(w / scale);
  if (v != v) return 0;  // NaN: 0/0 of a zero row, torch's cast gives 0
  return static_cast<int8_t>(clampf(round_even(v), -128.0f, 127.0f));
}

template <DType D>
inline uint8_t affine_value(float w, float scale, float shift, float levels) {
  const float v = rt<D>(rt<D>(w + shift) / scale);
  if (v != v) return 0;  // constant group: 0/0
  return static_cast<uint8_t>(clampf(round_even(v), 0.0f, levels));
}

// Calls fn(std::integral_constant<DType, D>) for the model dtype.
template <typename Fn>
inline void with_dtype(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::BF16: fn(std::integral_constant<DType, DType::BF16>{}); return;
    case DType::F16: fn(std::integral_constant<DType, DType::F16>{}); return;
    default: fn(std::integral_constant<DType, DType::F32>{}); return;
  }
}

// max |x| through the bit patterns (an integer max, which vectorizes); a result >= the pattern
// of +Inf means the row holds a NaN or Inf.
inline uint32_t max_abs_bits(const float* x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    u &= 0x7fffffffu;
    m = u > m ? u : m;
  }
  return m;
}

inline float dequant_affine(uint8_t q, float scale, float shift) {
  return scale * static_cast<float>(q) - shift;
}

// Sum of squared errors of one group quantized with (scale, shift) by quanto's formula.
double group_sq_err(std::span<const float> w, float scale, float shift, int bits, DType dt) {
  double e = 0;
  for (float x : w) {
    const double d = dequant_affine(quantize_affine_value(x, scale, shift, bits, dt), scale, shift) - x;
    e += d * d;
  }
  return e;
}

// Least-squares fit of w ~ a*q + c for fixed integer levels q. False if degenerate.
bool fit_affine(std::span<const float> w, const uint8_t* q, double* a, double* c) {
  double sq = 0, sqq = 0, sw = 0, sqw = 0;
  const double n = static_cast<double>(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    sq += q[i];
    sqq += static_cast<double>(q[i]) * q[i];
    sw += w[i];
    sqw += static_cast<double>(q[i]) * w[i];
  }
  const double det = n * sqq - sq * sq;
  if (!(det > 0)) return false;
  *a = (n * sqw - sq * sw) / det;
  *c = (sqq * sw - sq * sqw) / det;
  return *a > 0;
}

// Records the smallest flat index of a non-finite weight seen by any thread.
void note_bad(std::atomic<int64_t>& first, int64_t idx) {
  int64_t cur = first.load();
  while (idx < cur && !first.compare_exchange_weak(cur, idx)) {
  }
}

// Merges per-chunk errors in chunk order so reports do not depend on thread timing.
class ErrorCollector {
 public:
  void add(int64_t chunk_begin, const QuantError& e) {
    std::lock_guard lock(mutex_);
    parts_[chunk_begin].merge(e);
  }
  QuantError total() const {
    QuantError t;
    for (const auto& [k, e] : parts_) t.merge(e);
    return t;
  }

 private:
  std::mutex mutex_;
  std::map<int64_t, QuantError> parts_;
};

}  // namespace

// ---- per-value quantizers ----

int8_t quantize_qint8_value(float w, float scale, DType dt) {
  int8_t q = 0;
  with_dtype(dt, [&](auto d) { q = q8_value<decltype(d)::value>(w, scale); });
  return q;
}

uint8_t quantize_qfloat8_value(float w, float scale, DType dt) {
  const float v = round_to(dt, w / scale);
  if (v != v) return 0;  // quanto would store NaN; see the header
  return f32_to_f8e4m3(clampf(v, -448.0f, 448.0f));
}

uint8_t quantize_affine_value(float w, float scale, float shift, int bits, DType dt) {
  uint8_t q = 0;
  const float levels = static_cast<float>((1 << bits) - 1);
  with_dtype(dt, [&](auto d) { q = affine_value<decltype(d)::value>(w, scale, shift, levels); });
  return q;
}

float absmax_scale(std::span<const float> w, float qmax, DType dt) {
  float m = 0;
  for (float x : w) m = std::max(m, std::fabs(x));
  return round_to(dt, m / qmax);
}

void max_params(std::span<const float> w, int bits, DType dt, float* scale, float* shift) {
  float mn = w[0], mx = w[0];
  for (float x : w) {
    mn = std::min(mn, x);
    mx = std::max(mx, x);
  }
  const float levels = static_cast<float>((1 << bits) - 1);
  *scale = round_to(dt, round_to(dt, mx - mn) / levels);
  *shift = round_to(dt, -mn);
}

void search_params(std::span<const float> w, int bits, DType dt, float* scale, float* shift) {
  // Candidate level spacings around (max-min)/L; for each, assign levels, refit scale and shift
  // by least squares, round them to the model dtype and score with quanto's own quantization.
  constexpr int kSteps = 10;
  constexpr float kStepSize = 0.1f;  // in units of levels: spans L-1 .. L+1 levels over the range
  max_params(w, bits, dt, scale, shift);
  if (*scale == 0) return;
  double best = group_sq_err(w, *scale, *shift, bits, dt);
  const int levels = (1 << bits) - 1;
  const float mn = -*shift;
  float mx = mn;
  for (float x : w) mx = std::max(mx, x);
  std::vector<uint8_t> q(w.size());
  auto try_levels = [&](float sc, float sh) {
    for (std::size_t i = 0; i < w.size(); ++i) q[i] = quantize_affine_value(w[i], sc, sh, bits, dt);
    double a, c;
    if (!fit_affine(w, q.data(), &a, &c)) return;
    const float ns = round_to(dt, static_cast<float>(a)), nsh = round_to(dt, static_cast<float>(-c));
    if (!(ns > 0) || !std::isfinite(nsh)) return;
    const double e = group_sq_err(w, ns, nsh, bits, dt);
    if (e < best) {
      best = e;
      *scale = ns;
      *shift = nsh;
    }
  };
  for (int step = -kSteps; step <= kSteps; ++step) {
    const float sc = (mx - mn) / (static_cast<float>(levels) + step * kStepSize);
    if (!(sc > 0)) continue;
    try_levels(sc, -mn);
  }
  // Two refinement rounds from the best so far.
  for (int r = 0; r < 2; ++r) try_levels(*scale, *shift);
}

void hqq_params(std::span<const float> w, int bits, DType dt, float* scale, float* shift) {
  // quanto HqqOptimizer defaults: lp_norm 0.7, beta 10, kappa 1.01, 20 iterations; the scale
  // stays Max's, only the shift moves, and an iteration is kept only if the mean |error| drops.
  constexpr float kLpNorm = 0.7f, kKappa = 1.01f;
  constexpr int kIters = 20;
  float beta = 10.0f;
  max_params(w, bits, dt, scale, shift);
  if (*scale == 0) return;
  const float sc = *scale;
  const std::size_t n = w.size();
  std::vector<uint8_t> q(n);
  auto quant = [&](float sh) {
    double err = 0;
    for (std::size_t i = 0; i < n; ++i) {
      q[i] = quantize_affine_value(w[i], sc, sh, bits, dt);
      err += std::fabs(w[i] - dequant_affine(q[i], sc, sh));
    }
    return err / static_cast<double>(n);
  };
  double best = quant(*shift);
  for (int it = 0; it < kIters; ++it) {
    double acc = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float err = w[i] - dequant_affine(q[i], sc, *shift);
      const float a = std::fabs(err);
      const float shrunk = std::max(0.0f, a - std::pow(a, kLpNorm - 1.0f) / beta);
      const float e = std::copysign(shrunk, err) * (err != 0.0f);
      acc += static_cast<double>(q[i]) * sc - (w[i] - e);
    }
    const float new_shift = round_to(dt, static_cast<float>(acc / static_cast<double>(n)));
    const std::vector<uint8_t> prev = q;
    const double e = quant(new_shift);
    if (e < best) {
      best = e;
      *shift = new_shift;
      beta *= kKappa;
    } else {
      q = prev;
      break;
    }
  }
}

float tinygemm_shift_round_trip(float scale, float shift, int bits, DType dt) {
  const float half_range = round_to(dt, static_cast<float>(1 << (bits - 1)) * scale);
  const float stored = round_to(dt, -shift + half_range);
  return round_to(dt, half_range - stored);
}

// ---- whole matrices ----

std::optional<int64_t> compute_quant_params(const WeightView& w, const QuantSpec& s,
                                            std::span<float> scale, std::span<float> shift,
                                            ThreadPool& pool) {
  const QTypeInfo& info = qtype_info(s.qtype);
  QLLM_ASSERT(!is_float_qtype(s.qtype));
  QLLM_ASSERT(static_cast<int64_t>(scale.size()) == n_scale_rows(s, w.n_out, w.n_in));
  if (info.affine) {
    QLLM_ASSERT(s.group_size > 0 && w.n_in % s.group_size == 0);
    QLLM_ASSERT(shift.size() == scale.size());
  }
  std::atomic<int64_t> first_bad{std::numeric_limits<int64_t>::max()};
  pool.parallel_for(w.n_out, [&](int64_t b, int64_t e) {
    std::vector<float> row(static_cast<std::size_t>(w.n_in));
    for (int64_t o = b; o < e; ++o) {
      w.load(o, 0, w.n_in, row.data());
      if (max_abs_bits(row.data(), w.n_in) >= 0x7f800000u) {
        for (int64_t i = 0; i < w.n_in; ++i)
          if (!std::isfinite(row[i])) {
            note_bad(first_bad, o * w.n_in + i);
            break;
          }
      }
      if (!info.affine) {
        const float qmax = s.qtype == QType::QFloat8 ? 448.0f : 127.0f;
        scale[o] = round_to(s.model_dtype, bits_to_f32(max_abs_bits(row.data(), w.n_in)) / qmax);
        continue;
      }
      const int64_t gpr = w.n_in / s.group_size;
      for (int64_t j = 0; j < gpr; ++j) {
        std::span<const float> grp(row.data() + j * s.group_size, static_cast<std::size_t>(s.group_size));
        const int64_t g = o * gpr + j;
        float sc, sh;
        switch (s.optimizer) {
          case WeightOptimizer::Search: search_params(grp, info.bits, s.model_dtype, &sc, &sh); break;
          case WeightOptimizer::Hqq: hqq_params(grp, info.bits, s.model_dtype, &sc, &sh); break;
          default: max_params(grp, info.bits, s.model_dtype, &sc, &sh); break;
        }
        if (s.tinygemm_shift) sh = tinygemm_shift_round_trip(sc, sh, info.bits, s.model_dtype);
        scale[g] = sc;
        shift[g] = sh;
      }
    }
  });
  if (first_bad.load() != std::numeric_limits<int64_t>::max()) return first_bad.load();
  return std::nullopt;
}

QuantError quantize_weight(const WeightView& w, const QuantSpec& s, std::span<const float> scale,
                           std::span<const float> shift, std::span<std::byte> out,
                           ThreadPool& pool, QuantError* baseline) {
  const QTypeInfo& info = qtype_info(s.qtype);
  QLLM_ASSERT(out.size() == quantized_bytes(s, w.n_out, w.n_in));
  const DType dt = s.model_dtype;
  ErrorCollector errors, base_errors;
  auto* dst = reinterpret_cast<uint8_t*>(out.data());

  if (!info.affine) {
    pool.parallel_for(w.n_out, [&](int64_t b, int64_t e) {
      std::vector<float> row(static_cast<std::size_t>(w.n_in));
      QuantError err;
      for (int64_t o = b; o < e; ++o) {
        w.load(o, 0, w.n_in, row.data());
        const float sc = scale[o];
        uint8_t* d = dst + o * w.n_in;
        if (s.qtype == QType::QInt8) {
          with_dtype(dt, [&](auto tag) {
            // The hot loop: quantize first, then measure the error in a second, vectorizable pass.
            for (int64_t i = 0; i < w.n_in; ++i)
              d[i] = static_cast<uint8_t>(q8_value<decltype(tag)::value>(row[i], sc));
            add_row_error(err, row.data(), reinterpret_cast<const int8_t*>(d), sc, w.n_in);
          });
        } else {
          for (int64_t i = 0; i < w.n_in; ++i) {
            d[i] = quantize_qfloat8_value(row[i], sc, dt);
            add_error(err, row[i], sc * f8e4m3_to_f32(d[i]));
          }
        }
      }
      errors.add(b, err);
    });
    if (baseline) *baseline = errors.total();
    return errors.total();
  }

  // Affine: each packed row p collects bit field k from group p + k*rows_packed, so threads
  // split the packed rows and never share a byte.
  const int bits = info.bits;
  const int per_byte = 8 / bits;
  const int64_t G = s.group_size, gpr = w.n_in / G;
  const int64_t n_groups = w.n_out * gpr;
  const int64_t rows_packed = packed_rows(n_groups, bits);
  const bool want_base = baseline && s.optimizer != WeightOptimizer::Max;
  pool.parallel_for(rows_packed, [&](int64_t b, int64_t e) {
    std::vector<float> grp(static_cast<std::size_t>(G));
    QuantError err, base_err;
    for (int64_t p = b; p < e; ++p) {
      uint8_t* d = dst + p * G;
      std::fill(d, d + G, uint8_t{0});
      for (int k = 0; k < per_byte; ++k) {
        const int64_t g = p + k * rows_packed;
        if (g >= n_groups) break;
        w.load(g / gpr, (g % gpr) * G, G, grp.data());
        const float sc = scale[g], sh = shift[g];
        const float levels = static_cast<float>((1 << bits) - 1);
        with_dtype(dt, [&](auto tag) {
          for (int64_t j = 0; j < G; ++j) {
            const uint8_t q = affine_value<decltype(tag)::value>(grp[j], sc, sh, levels);
            d[j] |= static_cast<uint8_t>(q << (bits * k));
            add_error(err, grp[j], dequant_affine(q, sc, sh));
          }
        });
        if (want_base) {
          float bsc, bsh;
          max_params(grp, bits, dt, &bsc, &bsh);
          if (s.tinygemm_shift) bsh = tinygemm_shift_round_trip(bsc, bsh, bits, dt);
          for (int64_t j = 0; j < G; ++j)
            add_error(base_err, grp[j],
                      dequant_affine(quantize_affine_value(grp[j], bsc, bsh, bits, dt), bsc, bsh));
        }
      }
    }
    errors.add(b, err);
    if (want_base) base_errors.add(b, base_err);
  });
  if (baseline) *baseline = want_base ? base_errors.total() : errors.total();
  return errors.total();
}

}  // namespace qllm
