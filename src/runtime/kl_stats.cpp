#include "runtime/kl_stats.h"

#include <algorithm>
#include <cmath>

namespace qllm {

void log_softmax_f64(const float* logits, int64_t n_vocab, double* out) {
  double max_logit = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, double(logits[i]));
  double sum_exp = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(double(logits[i]) - max_logit);
  const double log_norm = max_logit + std::log(sum_exp);
  for (int64_t i = 0; i < n_vocab; ++i) out[i] = double(logits[i]) - log_norm;
}

double token_nll(const float* logits, int64_t n_vocab, int32_t target) {
  double max_logit = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, double(logits[i]));
  double sum_exp = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(double(logits[i]) - max_logit);
  return max_logit + std::log(sum_exp) - double(logits[target]);
}

double kl_divergence(const float* base_logits, const float* logits, int64_t n_vocab) {
  // Two passes per row for the normalisers, then one for the sum, without scratch memory.
  auto log_norm = [n_vocab](const float* l) {
    double m = l[0];
    for (int64_t i = 1; i < n_vocab; ++i) m = std::max(m, double(l[i]));
    double s = 0;
    for (int64_t i = 0; i < n_vocab; ++i) s += std::exp(double(l[i]) - m);
    return m + std::log(s);
  };
  const double norm_base = log_norm(base_logits), norm = log_norm(logits);
  double kl = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const double lp_base = double(base_logits[i]) - norm_base;
    const double lp = double(logits[i]) - norm;
    kl += std::exp(lp_base) * (lp_base - lp);
  }
  return std::max(kl, 0.0);
}

int32_t argmax(const float* logits, int64_t n_vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

double NllStats::ppl() const { return std::exp(mean_nll()); }

double NllStats::ppl_stderr() const {
  if (count_ < 2) return 0.0;
  const double mean = sum_ / count_;
  const double var = sum2_ / count_ - mean * mean;
  return var > 0 ? ppl() * std::sqrt(var / double(count_ - 1)) : 0.0;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  const double pos = q * double(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double v_lo = values[lo];
  // After nth_element the next order statistic is the minimum of the upper part.
  const double v_hi = hi == lo ? v_lo : *std::min_element(values.begin() + lo + 1, values.end());
  return v_lo + (pos - double(lo)) * (v_hi - v_lo);
}

KlSummary KlStats::summary() const {
  KlSummary s;
  s.count = count();
  if (kl_.empty()) return s;
  double sum = 0, sum2 = 0;
  for (double v : kl_) {
    sum += v;
    sum2 += v * v;
  }
  s.mean = sum / s.count;
  const double var = sum2 / s.count - s.mean * s.mean;
  s.mean_stderr = s.count > 1 && var > 0 ? std::sqrt(var / double(s.count - 1)) : 0.0;
  s.median = quantile(kl_, 0.5);
  s.p99 = quantile(kl_, 0.99);
  s.max = *std::max_element(kl_.begin(), kl_.end());
  s.top1_agree = double(same_top1_) / double(s.count);
  return s;
}

}  // namespace qllm
