#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace qllm {

// ---- methods ----

namespace {
struct MethodInfo {
  PplMethod method;
  std::string_view name, description;
};
constexpr MethodInfo kMethods[] = {
    {PplMethod::Chunks, "chunks",
     "llama.cpp: non-overlapping ctx-token chunks, BOS first, second half of each chunk scored"},
    {PplMethod::Stride, "stride",
     "Hugging Face sliding window: ctx-token windows every stride tokens, each token scored once"},
    {PplMethod::Lines, "lines",
     "one sequence per non-empty line, BOS first, truncated to ctx, tokens 1..n-1 scored"},
};
}  // namespace

std::string_view ppl_method_name(PplMethod m) { return kMethods[static_cast<int>(m)].name; }
std::string_view ppl_method_description(PplMethod m) {
  return kMethods[static_cast<int>(m)].description;
}
std::optional<PplMethod> ppl_method_from_name(std::string_view s) {
  for (const auto& m : kMethods)
    if (m.name == s) return m.method;
  return std::nullopt;
}

int64_t PplPlan::n_scored() const {
  int64_t n = 0;
  for (const auto& w : windows) n += w.n_scored();
  return n;
}

std::string normalize_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// ---- planners ----

PplPlan plan_chunks(std::span<const int32_t> tokens, int64_t ctx, std::optional<int32_t> bos,
                    const std::filesystem::path& source) {
  // ctx/2 .. ctx-2 must be a non-empty range of positions.
  if (ctx < 4) fail(source, "--ctx {} is too small for the chunks method (at least 4)", ctx);
  const auto n_tok = static_cast<int64_t>(tokens.size());
  const int64_t n_chunk = n_tok / ctx;
  if (n_chunk < 1)
    fail(source, "text too short: {} tokens, the chunks method needs at least ctx = {}", n_tok, ctx);
  PplPlan plan{PplMethod::Chunks, ctx, n_tok, {}};
  const int64_t first = ctx / 2;
  for (int64_t c = 0; c < n_chunk; ++c) {
    EvalWindow w;
    w.ids.assign(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
    if (bos) w.ids[0] = *bos;
    w.score_begin = first;
    w.score_end = ctx - 1;
    plan.windows.push_back(std::move(w));
  }
  return plan;
}

PplPlan plan_stride(std::span<const int32_t> tokens, int64_t ctx, int64_t stride,
                    const std::filesystem::path& source) {
  if (ctx < 2) fail(source, "--ctx {} is too small (at least 2)", ctx);
  if (stride < 1 || stride > ctx) fail(source, "--stride {} must be in [1, ctx = {}]", stride, ctx);
  const auto n_tok = static_cast<int64_t>(tokens.size());
  if (n_tok < 2) fail(source, "text too short: {} tokens, need at least 2 to score one", n_tok);
  PplPlan plan{PplMethod::Stride, ctx, n_tok, {}};
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n_tok; begin += stride) {
    const int64_t end = std::min(begin + ctx, n_tok);
    const int64_t len = end - begin, trg_len = end - prev_end;
    // Labels at window positions [len - trg_len, len) are targets; position 0 has no logits
    // before it, so it is never scored.
    const int64_t first_label = std::max<int64_t>(1, len - trg_len);
    EvalWindow w;
    w.ids.assign(tokens.begin() + begin, tokens.begin() + end);
    w.score_begin = first_label - 1;
    w.score_end = len - 1;
    if (w.n_scored() > 0) plan.windows.push_back(std::move(w));
    prev_end = end;
    if (end == n_tok) break;
  }
  return plan;
}

PplPlan plan_lines(std::string_view text, int64_t ctx,
                   const std::function<std::vector<int32_t>(std::string_view)>& encode,
                   const std::filesystem::path& source) {
  if (ctx < 2) fail(source, "--ctx {} is too small (at least 2)", ctx);
  const std::string norm = normalize_newlines(text);
  PplPlan plan{PplMethod::Lines, ctx, 0, {}};
  // Python's str.strip() whitespace.
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  size_t pos = 0;
  while (pos <= norm.size()) {
    size_t nl = norm.find('\n', pos);
    if (nl == std::string::npos) nl = norm.size();
    std::string_view line(norm.data() + pos, nl - pos);
    pos = nl + 1;
    const size_t b = line.find_first_not_of(kSpace);
    if (b == std::string_view::npos) continue;
    line = line.substr(b, line.find_last_not_of(kSpace) - b + 1);
    std::vector<int32_t> ids = encode(line);
    if (static_cast<int64_t>(ids.size()) > ctx) ids.resize(static_cast<size_t>(ctx));
    plan.n_text_tokens += static_cast<int64_t>(ids.size());
    if (ids.size() < 2) continue;
    EvalWindow w;
    w.score_begin = 0;
    w.score_end = static_cast<int64_t>(ids.size()) - 1;
    w.ids = std::move(ids);
    plan.windows.push_back(std::move(w));
  }
  if (plan.windows.empty())
    fail(source, "text too short: no line has the 2 tokens needed to score one");
  return plan;
}

// ---- evaluation ----

namespace {
struct TokenStats {
  double nll = 0, nll_base = 0, kl = 0;
  bool same_top1 = false;
};
}  // namespace

PplResult evaluate_perplexity(const PplPlan& plan, int64_t n_vocab, const LogitsFn& model,
                              const LogitsFn* base, ThreadPool& pool,
                              const PplProgress& progress) {
  PplResult r;
  r.method = plan.method;
  r.ctx = plan.ctx;
  r.n_windows = static_cast<int64_t>(plan.windows.size());
  KlStats kl;
  if (base) r.base.emplace();
  std::vector<TokenStats> stats;
  int64_t done = 0;
  for (const auto& w : plan.windows) {
    const float* base_logits = base ? (*base)(w.ids) : nullptr;
    const float* logits = model(w.ids);
    const int64_t n = w.n_scored();
    stats.assign(static_cast<size_t>(n), {});
    // Scored positions are independent: spread them over the pool, then sum in order so the
    // result does not depend on the thread count.
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const int64_t p = w.score_begin + k;
        const int32_t target = w.ids[static_cast<size_t>(p + 1)];
        const float* row = logits + p * n_vocab;
        TokenStats& s = stats[static_cast<size_t>(k)];
        s.nll = token_nll(row, n_vocab, target);
        if (base_logits) {
          const float* base_row = base_logits + p * n_vocab;
          s.nll_base = token_nll(base_row, n_vocab, target);
          s.kl = kl_divergence(base_row, row, n_vocab);
          s.same_top1 = argmax(row, n_vocab) == argmax(base_row, n_vocab);
        }
      }
    });
    for (const auto& s : stats) {
      r.model.add(s.nll);
      if (base) {
        r.base->add(s.nll_base);
        kl.add(s.kl, s.same_top1);
      }
    }
    ++done;
    if (progress) progress(done, r.n_windows, r.model);
  }
  if (base) r.kl = kl.summary();
  return r;
}

}  // namespace qllm
