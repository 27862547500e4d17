// Per-token quality statistics on logits: negative log-likelihood, KL divergence, top-1.
//
// All of them go through a log-softmax accumulated in f64, because a vocabulary of 150k entries
// summed in f32 loses the small probabilities that KL divergence is made of. Conventions follow
// llama.cpp's perplexity tool (tools/perplexity/perplexity.cpp), so numbers can be compared:
//   nll        = -log softmax(logits)[target]
//   ppl        = exp(mean nll);  its standard error is ppl * sqrt(var(nll) / (count - 1))
//   KL(base || model) = sum_v p_base(v) * (log p_base(v) - log p_model(v))    (nats)
//   top-1      = argmax(model) == argmax(base)
#pragma once

#include <cstdint>
#include <vector>

namespace qllm {

// log softmax of one row of logits, in f64. out must hold n_vocab values.
void log_softmax_f64(const float* logits, int64_t n_vocab, double* out);

// -log p(target) of one row of logits.
double token_nll(const float* logits, int64_t n_vocab, int32_t target);

// KL(base || model) of two rows over the same vocabulary, in nats. Never negative: rounding
// can make the sum dip below zero by ~1e-16, which is clamped.
double kl_divergence(const float* base_logits, const float* logits, int64_t n_vocab);

// Index of the largest logit (the first one on ties, as torch.argmax).
int32_t argmax(const float* logits, int64_t n_vocab);

// Running mean and spread of per-token NLLs; perplexity with llama.cpp's standard error.
class NllStats {
 public:
  void add(double nll) {
    sum_ += nll;
    sum2_ += nll * nll;
    ++count_;
  }
  void merge(const NllStats& o) {
    sum_ += o.sum_;
    sum2_ += o.sum2_;
    count_ += o.count_;
  }
  int64_t count() const { return count_; }
  double mean_nll() const { return count_ ? sum_ / count_ : 0.0; }
  double ppl() const;
  // Standard error of ppl by first-order propagation of the standard error of mean nll
  // (llama.cpp: ppl * sqrt((E[nll^2] - E[nll]^2) / (count - 1))). 0 for fewer than 2 tokens.
  double ppl_stderr() const;

 private:
  double sum_ = 0, sum2_ = 0;
  int64_t count_ = 0;
};

// Distribution of per-token KL divergences and the top-1 agreement count.
struct KlSummary {
  int64_t count = 0;
  double mean = 0, mean_stderr = 0, median = 0, p99 = 0, max = 0;
  double top1_agree = 0;  // fraction in [0, 1]
};

class KlStats {
 public:
  void add(double kl, bool same_top1) {
    kl_.push_back(kl);
    same_top1_ += same_top1 ? 1 : 0;
  }
  int64_t count() const { return static_cast<int64_t>(kl_.size()); }
  // Percentiles use linear interpolation between order statistics (numpy's default).
  KlSummary summary() const;

 private:
  std::vector<double> kl_;
  int64_t same_top1_ = 0;
};

// The q-quantile (q in [0, 1]) of values with numpy's linear interpolation; 0 when empty.
double quantile(std::vector<double> values, double q);

}  // namespace qllm
