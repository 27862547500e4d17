// Perplexity and KL statistics: closed-form values, numpy's percentile convention, llama.cpp's
// standard-error formula, and the three window planners' scoring rules.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "runtime/kl_stats.h"
#include "runtime/perplexity.h"
#include "util/error.h"

using namespace qllm;

namespace {
// f64 accumulation of a few hundred terms.
constexpr double kTol = 1e-12;
}  // namespace

TEST(KlStats, UniformLogitsGiveLogVocab) {
  std::vector<float> logits(512, 3.25f);
  EXPECT_NEAR(token_nll(logits.data(), 512, 17), std::log(512.0), kTol);
}

TEST(KlStats, LogSoftmaxNormalises) {
  std::vector<float> logits = {1.0f, -2.0f, 0.5f, 30.0f, -40.0f};
  std::vector<double> lp(logits.size());
  log_softmax_f64(logits.data(), 5, lp.data());
  double s = 0;
  for (double v : lp) s += std::exp(v);
  EXPECT_NEAR(s, 1.0, kTol);
  EXPECT_NEAR(lp[3] - lp[0], 29.0, kTol);
}

TEST(KlStats, KlOfKnownDistributions) {
  // p = (1/2, 1/2), q = (1/4, 3/4): KL(p||q) = 1/2 ln 2 + 1/2 ln(2/3).
  const float p[2] = {0.0f, 0.0f};
  const float q[2] = {static_cast<float>(std::log(0.25)), static_cast<float>(std::log(0.75))};
  EXPECT_NEAR(kl_divergence(p, q, 2), 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0), 1e-7);
  // KL is not symmetric: KL(q||p) = 1/4 ln(1/2) + 3/4 ln(3/2).
  EXPECT_NEAR(kl_divergence(q, p, 2), 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
  // A model against itself: exactly zero, shifted logits included (softmax is shift-invariant).
  std::vector<float> a = {0.3f, -1.0f, 2.0f, 0.0f}, b = a;
  EXPECT_EQ(kl_divergence(a.data(), b.data(), 4), 0.0);
  EXPECT_EQ(argmax(a.data(), 4), 2);
}

TEST(KlStats, PerplexityStandardErrorIsLlamaCpps) {
  // llama.cpp: ppl * sqrt((E[x^2] - E[x]^2) / (n - 1)).
  NllStats s;
  for (double v : {1.0, 2.0, 3.0, 4.0}) s.add(v);
  EXPECT_EQ(s.count(), 4);
  EXPECT_NEAR(s.mean_nll(), 2.5, kTol);
  EXPECT_NEAR(s.ppl(), std::exp(2.5), 1e-9);
  EXPECT_NEAR(s.ppl_stderr(), std::exp(2.5) * std::sqrt((7.5 - 6.25) / 3.0), 1e-9);
}

TEST(KlStats, QuantilesFollowNumpy) {
  // numpy.percentile(..., q) with the default linear method.
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({3, 1, 2}, 0.5), 2.0);
  std::vector<double> v(100);
  std::iota(v.begin(), v.end(), 1.0);
  EXPECT_NEAR(quantile(v, 0.99), 99.01, 1e-9);
  EXPECT_DOUBLE_EQ(quantile({5}, 0.99), 5.0);
}

TEST(Perplexity, ChunksFollowLlamaCpp) {
  std::vector<int32_t> toks(3 * 8 + 5);
  std::iota(toks.begin(), toks.end(), 100);
  PplPlan p = plan_chunks(toks, 8, 1, "t");
  ASSERT_EQ(p.windows.size(), 3u);  // the 5-token tail is dropped
  for (size_t c = 0; c < 3; ++c) {
    const auto& w = p.windows[c];
    EXPECT_EQ(w.ids[0], 1);  // BOS replaces the first token
    EXPECT_EQ(w.ids[1], toks[c * 8 + 1]);
    // llama.cpp: first = n_ctx/2, n_ctx - 1 - first tokens scored per chunk.
    EXPECT_EQ(w.score_begin, 4);
    EXPECT_EQ(w.n_scored(), 8 - 1 - 4);
  }
  // No BOS: the chunk is the text as it is.
  EXPECT_EQ(plan_chunks(toks, 8, std::nullopt, "t").windows[1].ids[0], toks[8]);
  EXPECT_THROW(plan_chunks(std::vector<int32_t>(7, 5), 8, 1, "t"), FormatError);
}

TEST(Perplexity, StrideScoresEveryTokenOnce) {
  std::vector<int32_t> toks(50);
  std::iota(toks.begin(), toks.end(), 0);
  for (int64_t stride : {1, 3, 8, 15}) {
    PplPlan p = plan_stride(toks, 16, stride, "t");
    std::multiset<int32_t> targets;
    for (const auto& w : p.windows) {
      EXPECT_LE(static_cast<int64_t>(w.ids.size()), 16);
      for (int64_t pos = w.score_begin; pos < w.score_end; ++pos) targets.insert(w.ids[pos + 1]);
    }
    ASSERT_EQ(targets.size(), 49u) << "stride " << stride;
    for (int32_t t = 1; t < 50; ++t) EXPECT_EQ(targets.count(t), 1u);
  }
  // stride == ctx: Hugging Face's loop leaves each later window's first token without context.
  PplPlan p = plan_stride(toks, 16, 16, "t");
  EXPECT_EQ(p.n_scored(), 49 - 3);
  EXPECT_THROW(plan_stride(toks, 16, 17, "t"), FormatError);
  EXPECT_THROW(plan_stride(std::vector<int32_t>{5}, 16, 8, "t"), FormatError);
}

TEST(Perplexity, LinesProtocol) {
  // Fake encoder: BOS, then one id per character.
  auto enc = [](std::string_view s) {
    std::vector<int32_t> ids{1};
    for (char c : s) ids.push_back(static_cast<unsigned char>(c));
    return ids;
  };
  PplPlan p = plan_lines("  ab \r\n\r\n\t \ncdefg\rxy\n", 4, enc, "t");
  ASSERT_EQ(p.windows.size(), 3u);
  EXPECT_EQ(p.windows[0].ids, (std::vector<int32_t>{1, 'a', 'b'}));  // stripped
  EXPECT_EQ(p.windows[1].ids, (std::vector<int32_t>{1, 'c', 'd', 'e'}));  // truncated to ctx
  EXPECT_EQ(p.windows[2].ids, (std::vector<int32_t>{1, 'x', 'y'}));  // lone CR is a line end
  EXPECT_EQ(p.n_scored(), 2 + 3 + 2);
  EXPECT_THROW(plan_lines(" \n\n", 4, enc, "t"), FormatError);
}

TEST(Perplexity, ModelAgainstItselfHasNoDivergence) {
  const int64_t n_vocab = 7;
  std::vector<float> logits;
  LogitsFn fn = [&](std::span<const int32_t> ids) {
    logits.resize(ids.size() * n_vocab);
    for (size_t p = 0; p < ids.size(); ++p)
      for (int64_t v = 0; v < n_vocab; ++v)
        logits[p * n_vocab + v] = std::sin(0.7f * float(ids[p] * 3 + v));
    return logits.data();
  };
  std::vector<int32_t> toks = {1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 2, 3, 1};
  ThreadPool& pool = ThreadPool::global();
  PplResult r = evaluate_perplexity(plan_chunks(toks, 8, 1, "t"), n_vocab, fn, &fn, pool);
  ASSERT_TRUE(r.kl && r.base);
  EXPECT_EQ(r.model.count(), 2 * 3);
  EXPECT_EQ(r.kl->mean, 0.0);
  EXPECT_EQ(r.kl->max, 0.0);
  EXPECT_EQ(r.kl->top1_agree, 1.0);
  EXPECT_EQ(r.base->ppl(), r.model.ppl());
}
