#include "runtime/perplexity_run.h"

#include <memory>
#include <optional>

#include "runtime/cuda/cuda_session.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "runtime/session.h"
#include "util/error.h"

namespace qllm {
namespace {

// llama.cpp's and Hugging Face's usual evaluation context.
constexpr int64_t kDefaultCtx = 512;

void check_same_vocab(const Model& model, const Model& base) {
  const int64_t a = model.config().n_vocab, b = base.config().n_vocab;
  if (a != b)
    fail(base.dir(), "the base model's vocabulary has {} entries, the model's {}: KL divergence "
         "needs the same vocabulary", b, a);
  const Tokenizer& ta = model.tokenizer();
  const Tokenizer& tb = base.tokenizer();
  if (ta.n_vocab() != tb.n_vocab())
    fail(base.dir(), "the base model's tokenizer has {} tokens, the model's {}: KL divergence "
         "needs the same vocabulary", tb.n_vocab(), ta.n_vocab());
  // Same size is not same vocabulary: compare every token's text.
  for (int32_t id = 0; id < ta.n_vocab(); ++id)
    if (ta.token_text(id) != tb.token_text(id))
      fail(base.dir(), "the base model's tokenizer differs from the model's at token {} ('{}' vs "
           "'{}'): KL divergence needs the same vocabulary", id, tb.token_text(id), ta.token_text(id));
}

}  // namespace

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open the text file");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail(path, "cannot read the text file");
  std::string text = normalize_newlines(ss.str());
  if (text.find_first_not_of(" \t\n\r\v\f") == std::string::npos)
    fail(path, "the text file is empty");
  return text;
}

PerplexityRun run_perplexity(const Model& model, const Model* base,
                             const std::filesystem::path& text_path,
                             const PerplexityOptions& opts, const PplProgress& progress) {
  const ModelConfig& cfg = model.config();
  PerplexityRun run;
  run.ctx = opts.ctx > 0 ? opts.ctx : std::min(kDefaultCtx, cfg.n_ctx);
  if (run.ctx > cfg.n_ctx)
    fail(model.dir(), "--ctx {} exceeds the model's context of {} tokens", run.ctx, cfg.n_ctx);
  if (base) {
    check_same_vocab(model, *base);
    if (run.ctx > base->config().n_ctx)
      fail(base->dir(), "--ctx {} exceeds the base model's context of {} tokens", run.ctx,
           base->config().n_ctx);
  }
  run.stride = opts.stride > 0 ? opts.stride : std::max<int64_t>(1, run.ctx / 2);

  const std::string text = read_text_file(text_path);
  const Tokenizer& tok = model.tokenizer();
  PplPlan plan;
  if (opts.method == PplMethod::Lines) {
    const std::optional<int32_t> bos = tok.bos_id();
    auto encode = [&](std::string_view line) {
      std::vector<int32_t> ids = tok.encode(line, true);
      // The protocol scores tokens 1..n-1 after a BOS; add it where the tokenizer does not.
      if (bos && (ids.empty() || ids[0] != *bos)) ids.insert(ids.begin(), *bos);
      return ids;
    };
    plan = plan_lines(text, run.ctx, encode, text_path);
  } else {
    const std::vector<int32_t> ids = tok.encode(text, true);
    if (opts.method == PplMethod::Chunks) {
      // llama.cpp puts BOS at each chunk start only when the vocabulary adds BOS.
      const std::optional<int32_t> bos = tok.bos_id();
      const bool adds_bos = bos && !ids.empty() && ids[0] == *bos;
      plan = plan_chunks(ids, run.ctx, adds_bos ? bos : std::nullopt, text_path);
    } else {
      plan = plan_stride(ids, run.ctx, run.stride, text_path);
    }
  }
  if (opts.max_windows > 0 && static_cast<int64_t>(plan.windows.size()) > opts.max_windows)
    plan.windows.resize(static_cast<size_t>(opts.max_windows));
  run.n_text_tokens = plan.n_text_tokens;
  run.n_scored = plan.n_scored();

  // Each window is one fresh sequence; the logits of every position are scored.
  auto cpu_fn = [&](std::optional<Session>& s, const Model& m) {
    s.emplace(m, run.ctx);
    return LogitsFn([&s](std::span<const int32_t> ids) {
      s->reset();
      return s->forward(ids, true);
    });
  };
  // On the GPU, prefill runs in f32 (exact_prefill): perplexity compares models, so the
  // tensor-core bf16 shortcut would blur exactly the differences being measured.
  auto cuda_fn = [&](std::unique_ptr<cuda::CudaModel>& cm, std::optional<cuda::CudaSession>& s,
                     const Model& m) {
    cm = std::make_unique<cuda::CudaModel>(m);
    s.emplace(*cm, run.ctx, /*exact_prefill=*/true);
    return LogitsFn([&s](std::span<const int32_t> ids) {
      s->reset();
      return s->forward(ids, true);
    });
  };
  std::optional<Session> session, base_session;
  std::unique_ptr<cuda::CudaModel> gpu_model, gpu_base;
  std::optional<cuda::CudaSession> gpu_session, gpu_base_session;
  LogitsFn model_fn = opts.cuda ? cuda_fn(gpu_model, gpu_session, model) : cpu_fn(session, model);
  LogitsFn base_fn;
  if (base) base_fn = opts.cuda ? cuda_fn(gpu_base, gpu_base_session, *base) : cpu_fn(base_session, *base);
  run.result = evaluate_perplexity(plan, cfg.n_vocab, model_fn, base ? &base_fn : nullptr,
                                   ThreadPool::global(), progress);
  return run;
}

}  // namespace qllm
