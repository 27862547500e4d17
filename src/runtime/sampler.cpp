#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qllm {

Sampler::Sampler(const SamplerOptions& opts, int64_t n_vocab)
    : opts_(opts), rng_(opts.seed), order_(static_cast<std::size_t>(n_vocab)),
      probs_(static_cast<std::size_t>(n_vocab)), seen_(static_cast<std::size_t>(n_vocab)) {}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  const auto n = static_cast<int64_t>(logits.size());
  if (opts_.repetition_penalty != 1.0f) {
    // Each id once, however often it occurs (HF gathers and scatters by id).
    const float p = opts_.repetition_penalty;
    for (int32_t id : history) {
      if (id < 0 || id >= n || seen_[id]) continue;
      seen_[id] = 1;
      logits[id] = logits[id] < 0.0f ? logits[id] * p : logits[id] / p;
    }
    for (int32_t id : history)
      if (id >= 0 && id < n) seen_[id] = 0;
  }
  if (opts_.temperature <= 0.0f) {
    // First maximum, like torch.argmax.
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  for (int64_t i = 0; i < n; ++i) logits[i] /= opts_.temperature;

  // Candidates sorted by logit, highest first; ties keep the lower id first.
  std::iota(order_.begin(), order_.end(), 0);
  int64_t keep = n;
  if (opts_.top_k > 0 && opts_.top_k < n) {
    keep = opts_.top_k;
    // HF keeps every token whose logit is >= the k-th largest, ties included.
    std::nth_element(order_.begin(), order_.begin() + (keep - 1), order_.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    const float kth = logits[order_[keep - 1]];
    keep = std::partition(order_.begin(), order_.end(), [&](int32_t i) { return logits[i] >= kth; }) -
           order_.begin();
  }
  std::stable_sort(order_.begin(), order_.begin() + keep,
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const float mx = logits[order_[0]];
  double sum = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    probs_[i] = std::exp(logits[order_[i]] - mx);
    sum += probs_[i];
  }
  if (opts_.top_p < 1.0f) {
    // Keep the smallest prefix whose probability mass reaches top_p (at least one token).
    double cum = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cum += probs_[i] / sum;
      if (cum >= opts_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = 0.0;
    for (int64_t i = 0; i < keep; ++i) sum += probs_[i];
  }
  // u in [0, 1) from the top 53 bits.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * sum;
  double acc = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += probs_[i];
    if (u < acc) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace qllm
