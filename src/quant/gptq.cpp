#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "format/convert.h"
#include "quant/quantizer.h"
#include "util/error.h"

namespace qllm {
namespace {

constexpr int kMaxDampRetries = 8;
// Below this size the factorisations take well under a millisecond and waking the pool's
// threads for each column costs more than it saves.
constexpr int64_t kParallelMinN = 384;

// Lower Cholesky factor of a [n, n] in place (row-major, upper triangle left as is).
// False if a is not positive definite.
bool cholesky_lower(std::vector<double>& a, int64_t n, ThreadPool& pool) {
  for (int64_t j = 0; j < n; ++j) {
    double* rj = a.data() + j * n;
    double d = rj[j];
    for (int64_t k = 0; k < j; ++k) d -= rj[k] * rj[k];
    if (!(d > 0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    rj[j] = ljj;
    pool.parallel_for(n - j - 1, [&](int64_t b, int64_t e) {
      for (int64_t i = j + 1 + b; i < j + 1 + e; ++i) {
        double* ri = a.data() + i * n;
        double s = ri[j];
        for (int64_t k = 0; k < j; ++k) s -= ri[k] * rj[k];
        ri[j] = s / ljj;
      }
    });
  }
  return true;
}

struct GroupParams {
  float scale = 0, shift = 0;
};

float dequant(uint8_t q, GroupParams p) { return p.scale * static_cast<float>(q) - p.shift; }

// Plain rounding of W on the scales and shifts already in r.
void round_on_grid(std::span<const float> w, int64_t n_out, int64_t n_in, const GptqOptions& opt,
                   GptqResult* r) {
  const int64_t g = opt.group_size, per_row = n_in / g;
  r->q.resize(static_cast<size_t>(n_out * n_in));
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) {
      const size_t gi = static_cast<size_t>(o * per_row + i / g);
      r->q[static_cast<size_t>(o * n_in + i)] = quantize_affine_value(
          w[static_cast<size_t>(o * n_in + i)], r->scale[gi], r->shift[gi], opt.bits, opt.model_dtype);
    }
}

// Solves the symmetric positive definite system a x = b (a [n, n], overwritten) by Cholesky.
bool solve_spd(std::vector<double>& a, std::vector<double>& b, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (int64_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    a[j * n + j] = std::sqrt(d);
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / a[j * n + j];
    }
  }
  for (int64_t i = 0; i < n; ++i) {  // L y = b
    double s = b[i];
    for (int64_t k = 0; k < i; ++k) s -= a[i * n + k] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (int64_t i = n - 1; i >= 0; --i) {  // L^T x = y
    double s = b[i];
    for (int64_t k = i + 1; k < n; ++k) s -= a[k * n + i] * b[k];
    b[i] = s / a[i * n + i];
  }
  return true;
}

}  // namespace

bool gptq_inverse_factor(std::span<const double> h, int64_t n, double damp, std::vector<double>* u,
                         double* damp_used) {
  ThreadPool serial(1);
  ThreadPool& pool = n >= kParallelMinN ? ThreadPool::global() : serial;
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += h[i * n + i] == 0 ? 1.0 : h[i * n + i];
  mean_diag /= double(std::max<int64_t>(n, 1));
  std::vector<double> l(static_cast<size_t>(n * n));
  for (int attempt = 0; attempt < kMaxDampRetries; ++attempt, damp *= 2) {
    // 1. L = chol(H + damp * mean(diag) * I), dead inputs given a unit diagonal.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) l[i * n + j] = h[i * n + j];
    for (int64_t i = 0; i < n; ++i) {
      if (l[i * n + i] == 0) l[i * n + i] = 1;
      l[i * n + i] += damp * mean_diag;
    }
    if (!cholesky_lower(l, n, pool)) continue;
    // 2. L^-1, stored transposed (xt[c][k] = Linv[k][c], non-zero for k >= c) so that every
    // inner loop below walks memory contiguously.
    std::vector<double> xt(static_cast<size_t>(n * n), 0.0);
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        double* x = xt.data() + c * n;
        x[c] = 1.0 / l[c * n + c];
        for (int64_t i = c + 1; i < n; ++i) {
          const double* li = l.data() + i * n;
          double s = 0;
          for (int64_t k = c; k < i; ++k) s += li[k] * x[k];
          x[i] = -s / li[i];
        }
      }
    });
    // 3. H^-1 = L^-T L^-1: hinv[i][j] = sum_k Linv[k][i] Linv[k][j] (lower triangle).
    std::vector<double> hinv(static_cast<size_t>(n * n), 0.0);
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          const double* xi = xt.data() + i * n;
          const double* xj = xt.data() + j * n;
          double s = 0;
          for (int64_t k = i; k < n; ++k) s += xi[k] * xj[k];
          hinv[i * n + j] = s;
        }
    });
    // 4. U = chol(H^-1)^T, upper.
    if (!cholesky_lower(hinv, n, pool)) continue;
    u->assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) (*u)[j * n + i] = hinv[i * n + j];
    *damp_used = damp;
    return true;
  }
  return false;
}

GptqResult max_round(std::span<const float> w, int64_t n_out, int64_t n_in, const GptqOptions& opt,
                     ThreadPool& pool) {
  const int64_t g = opt.group_size, per_row = n_in / g;
  GptqResult r;
  r.q.resize(static_cast<size_t>(n_out * n_in));
  r.scale.resize(static_cast<size_t>(n_out * per_row));
  r.shift.resize(r.scale.size());
  pool.parallel_for(n_out, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o)
      for (int64_t k = 0; k < per_row; ++k) {
        const size_t gi = static_cast<size_t>(o * per_row + k);
        std::span<const float> grp = w.subspan(static_cast<size_t>(o * n_in + k * g), static_cast<size_t>(g));
        max_params(grp, opt.bits, opt.model_dtype, &r.scale[gi], &r.shift[gi]);
        for (int64_t i = 0; i < g; ++i)
          r.q[static_cast<size_t>(o * n_in + k * g + i)] =
              quantize_affine_value(grp[static_cast<size_t>(i)], r.scale[gi], r.shift[gi], opt.bits, opt.model_dtype);
      }
  });
  return r;
}

GptqResult gptq_quantize(std::span<const float> w, int64_t n_out, int64_t n_in,
                         std::span<const double> h, const GptqOptions& opt, ThreadPool& pool,
                         const GptqResult* grid) {
  QLLM_ASSERT(opt.bits == 2 || opt.bits == 4);
  QLLM_ASSERT(opt.group_size > 0 && n_in % opt.group_size == 0);
  QLLM_ASSERT(static_cast<int64_t>(w.size()) == n_out * n_in);
  QLLM_ASSERT(static_cast<int64_t>(h.size()) == n_in * n_in);
  const int64_t g = opt.group_size, per_row = n_in / g;

  // Column order, and H permuted to it.
  std::vector<int64_t> perm(static_cast<size_t>(n_in));
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order)
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return h[a * n_in + a] > h[b * n_in + b]; });
  std::vector<double> hp(static_cast<size_t>(n_in * n_in));
  for (int64_t i = 0; i < n_in; ++i)
    for (int64_t j = 0; j < n_in; ++j) hp[i * n_in + j] = h[perm[i] * n_in + perm[j]];

  std::vector<double> u;
  double damp_used = 0;
  const bool fixed_grid = grid || opt.act_order;
  if (!gptq_inverse_factor(hp, n_in, opt.damp, &u, &damp_used)) {
    GptqResult r = max_round(w, n_out, n_in, opt, pool);
    if (grid) {
      r.scale = grid->scale;
      r.shift = grid->shift;
      round_on_grid(w, n_out, n_in, opt, &r);
    }
    return r;
  }

  // act_order visits a group's columns out of order, so its parameters are fixed up front
  // (static groups: the given grid, or MaxOptimizer on the original weights); otherwise they are
  // set when a group's first column is reached.
  GptqResult r = grid ? *grid : opt.act_order ? max_round(w, n_out, n_in, opt, pool) : GptqResult{};
  QLLM_ASSERT(!grid || static_cast<int64_t>(grid->scale.size()) == n_out * per_row);
  r.damp_used = damp_used;
  r.q.assign(static_cast<size_t>(n_out * n_in), 0);
  r.scale.resize(static_cast<size_t>(n_out * per_row));
  r.shift.resize(r.scale.size());

  pool.parallel_for(n_out, [&](int64_t b, int64_t e) {
    std::vector<double> row(static_cast<size_t>(n_in));
    std::vector<float> grp(static_cast<size_t>(g));
    for (int64_t o = b; o < e; ++o) {
      for (int64_t i = 0; i < n_in; ++i) row[i] = w[static_cast<size_t>(o * n_in + perm[i])];
      for (int64_t i = 0; i < n_in; ++i) {
        const int64_t col = perm[i];
        const size_t gi = static_cast<size_t>(o * per_row + col / g);
        if (!fixed_grid && i % g == 0) {
          // Columns are in natural order here, so the group is row[i .. i+g).
          for (int64_t k = 0; k < g; ++k) grp[k] = static_cast<float>(row[i + k]);
          max_params(grp, opt.bits, opt.model_dtype, &r.scale[gi], &r.shift[gi]);
        }
        const GroupParams p{r.scale[gi], r.shift[gi]};
        const uint8_t q = quantize_affine_value(static_cast<float>(row[i]), p.scale, p.shift,
                                                opt.bits, opt.model_dtype);
        r.q[static_cast<size_t>(o * n_in + col)] = q;
        const double* ui = u.data() + i * n_in;
        const double err = (row[i] - double(dequant(q, p))) / ui[i];
        for (int64_t j = i + 1; j < n_in; ++j) row[j] -= err * ui[j];
      }
    }
  });
  return r;
}

GptqResult refit_grid(std::span<const float> w, int64_t n_out, int64_t n_in,
                      std::span<const double> h, const GptqResult& r, const GptqOptions& opt,
                      ThreadPool& pool) {
  const int64_t g = opt.group_size, k = n_in / g, n = 2 * k;
  GptqResult out = r;
  // Row o: w_q,i = s_{g(i)} q_i - z_{g(i)}. With A [n_in, 2k] (columns q and -1 per group),
  // minimise (w - A t)^T H (w - A t): (A^T H A) t = A^T H w, a 2k x 2k system.
  pool.parallel_for(n_out, [&](int64_t b, int64_t e) {
    std::vector<double> m(static_cast<size_t>(n * n)), rhs(static_cast<size_t>(n));
    std::vector<double> hq(static_cast<size_t>(n_in)), h1(static_cast<size_t>(n_in));
    for (int64_t o = b; o < e; ++o) {
      const uint8_t* q = r.q.data() + o * n_in;
      const float* wr = w.data() + o * n_in;
      std::fill(m.begin(), m.end(), 0.0);
      std::fill(rhs.begin(), rhs.end(), 0.0);
      // hq = H q_masked per group is needed per group pair; accumulate directly: for each row i
      // of H, t_i = sum_j H_ij (q_j, -1) split by the group of j.
      for (int64_t i = 0; i < n_in; ++i) {
        const double* hi = h.data() + i * n_in;
        const int64_t gi = i / g;
        const double ai0 = q[i], ai1 = -1.0;
        double hw = 0;
        for (int64_t j = 0; j < n_in; ++j) hw += hi[j] * wr[j];
        rhs[2 * gi] += ai0 * hw;
        rhs[2 * gi + 1] += ai1 * hw;
        for (int64_t gj = 0; gj < k; ++gj) {
          double sq = 0, s1 = 0;
          for (int64_t j = gj * g; j < (gj + 1) * g; ++j) {
            sq += hi[j] * q[j];
            s1 -= hi[j];
          }
          m[(2 * gi) * n + 2 * gj] += ai0 * sq;
          m[(2 * gi) * n + 2 * gj + 1] += ai0 * s1;
          m[(2 * gi + 1) * n + 2 * gj] += ai1 * sq;
          m[(2 * gi + 1) * n + 2 * gj + 1] += ai1 * s1;
        }
      }
      // A tiny ridge keeps a group whose codes are all equal solvable.
      double tr = 0;
      for (int64_t a = 0; a < n; ++a) tr += m[a * n + a];
      for (int64_t a = 0; a < n; ++a) m[a * n + a] += 1e-9 * tr / double(n) + 1e-30;
      if (!solve_spd(m, rhs, n)) continue;
      bool ok = true;
      for (int64_t c = 0; c < k; ++c) ok &= rhs[2 * c] > 0 && std::isfinite(rhs[2 * c + 1]);
      if (!ok) continue;
      for (int64_t c = 0; c < k; ++c) {
        out.scale[static_cast<size_t>(o * k + c)] = round_to(opt.model_dtype, static_cast<float>(rhs[2 * c]));
        out.shift[static_cast<size_t>(o * k + c)] = round_to(opt.model_dtype, static_cast<float>(rhs[2 * c + 1]));
      }
    }
  });
  return out;
}

std::vector<double> row_output_error(std::span<const float> w, int64_t n_out, int64_t n_in,
                                     std::span<const double> h, const GptqResult& r,
                                     int64_t group_size, ThreadPool& pool) {
  std::vector<double> err(static_cast<size_t>(n_out));
  const int64_t per_row = n_in / group_size;
  pool.parallel_for(n_out, [&](int64_t b, int64_t e) {
    std::vector<double> d(static_cast<size_t>(n_in));
    for (int64_t o = b; o < e; ++o) {
      for (int64_t i = 0; i < n_in; ++i) {
        const size_t gi = static_cast<size_t>(o * per_row + i / group_size);
        d[i] = double(w[o * n_in + i]) - double(dequant(r.q[o * n_in + i], {r.scale[gi], r.shift[gi]}));
      }
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        const double* hi = h.data() + i * n_in;
        double t = 0;
        for (int64_t j = 0; j < n_in; ++j) t += hi[j] * d[j];
        s += d[i] * t;
      }
      err[static_cast<size_t>(o)] = s;
    }
  });
  return err;
}

GptqResult gptq_refined(std::span<const float> w, int64_t n_out, int64_t n_in,
                        std::span<const double> h, const GptqOptions& opt, ThreadPool& pool,
                        const GptqResult* start_grid, int rounds) {
  const int64_t g = opt.group_size, per_row = n_in / g;
  GptqResult best = gptq_quantize(w, n_out, n_in, h, opt, pool, start_grid);
  std::vector<double> best_err = row_output_error(w, n_out, n_in, h, best, g, pool);
  GptqResult cur = best;
  for (int round = 0; round < rounds; ++round) {
    GptqResult grid = refit_grid(w, n_out, n_in, h, cur, opt, pool);
    cur = gptq_quantize(w, n_out, n_in, h, opt, pool, &grid);
    const std::vector<double> err = row_output_error(w, n_out, n_in, h, cur, g, pool);
    for (int64_t o = 0; o < n_out; ++o) {
      if (!(err[o] < best_err[o])) continue;
      best_err[o] = err[o];
      std::copy_n(cur.q.begin() + o * n_in, n_in, best.q.begin() + o * n_in);
      std::copy_n(cur.scale.begin() + o * per_row, per_row, best.scale.begin() + o * per_row);
      std::copy_n(cur.shift.begin() + o * per_row, per_row, best.shift.begin() + o * per_row);
    }
  }
  return best;
}

std::vector<float> gptq_dequantize(const GptqResult& r, int64_t n_out, int64_t n_in,
                                   int64_t group_size) {
  std::vector<float> out(static_cast<size_t>(n_out * n_in));
  const int64_t per_row = n_in / group_size;
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) {
      const size_t gi = static_cast<size_t>(o * per_row + i / group_size);
      out[static_cast<size_t>(o * n_in + i)] =
          dequant(r.q[static_cast<size_t>(o * n_in + i)], {r.scale[gi], r.shift[gi]});
    }
  return out;
}

}  // namespace qllm
