#include "runtime/calibration.h"

#include <algorithm>
#include <map>
#include <utility>

#include "runtime/perplexity_run.h"
#include "runtime/session.h"
#include "util/error.h"

namespace qllm {
namespace {

constexpr int64_t kDefaultCtx = 512;

// The role whose hook call carries a module's input (the first consumer of shared activations).
Role input_role(Role r, const ArchSpec& s) {
  switch (r) {
    case Role::AttnK:
    case Role::AttnV: return Role::AttnQ;
    case Role::MlpUp: return s.gated_mlp ? Role::MlpGate : Role::MlpUp;
    default: return r;
  }
}

// H += X^T X for X [n_tok, n_in]; lower triangle only, mirrored at the end.
void accumulate(Hessian& h, const float* x, int64_t n_tok, ThreadPool& pool) {
  const int64_t n = h.n_in;
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double* hi = h.h.data() + i * n;
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* xt = x + t * n;
        const double xi = xt[i];
        if (xi == 0) continue;
        for (int64_t j = 0; j <= i; ++j) hi[j] += xi * double(xt[j]);
      }
    }
  });
  h.n_tok += n_tok;
}

}  // namespace

std::shared_ptr<const HessianMap> collect_hessians(
    const Model& model, const std::filesystem::path& text_path, const CalibrationOptions& opts,
    const std::function<void(int64_t, int64_t)>& progress) {
  const ModelConfig& cfg = model.config();
  const int64_t ctx = opts.ctx > 0 ? opts.ctx : std::min(kDefaultCtx, cfg.n_ctx);
  if (ctx > cfg.n_ctx)
    fail(model.dir(), "calibration context {} exceeds the model's context of {} tokens", ctx,
         cfg.n_ctx);
  if (opts.max_tokens < 2) fail_usage("--calib-tokens {} must be at least 2", opts.max_tokens);
  const std::string text = read_text_file(text_path);
  const Tokenizer& tok = model.tokenizer();
  std::vector<int32_t> ids = tok.encode(text, true);
  if (ids.size() < 2) fail(text_path, "calibration text too short: {} token(s)", ids.size());
  if (static_cast<int64_t>(ids.size()) > opts.max_tokens) ids.resize(static_cast<size_t>(opts.max_tokens));
  const std::optional<int32_t> bos = tok.bos_id();
  const bool adds_bos = bos && ids[0] == *bos;

  // One accumulator per distinct input: (role of the hook call, layer).
  std::map<std::pair<Role, int>, std::shared_ptr<Hessian>> acc;
  Session session(model, ctx);
  ThreadPool& pool = ThreadPool::global();
  session.linear_input_hook = [&](Role role, int layer, const float* x, int64_t n_tok, int64_t n_in) {
    auto& h = acc[{role, layer}];
    if (!h) {
      h = std::make_shared<Hessian>();
      h->n_in = n_in;
      h->h.assign(static_cast<size_t>(n_in * n_in), 0.0);
    }
    accumulate(*h, x, n_tok, pool);
  };
  const auto n_tok = static_cast<int64_t>(ids.size());
  for (int64_t start = 0; start < n_tok; start += ctx) {
    const int64_t len = std::min(ctx, n_tok - start);
    if (len < 2 && start > 0) break;
    std::vector<int32_t> window(ids.begin() + start, ids.begin() + start + len);
    if (adds_bos) window[0] = *bos;
    session.reset();
    session.forward(window, true);  // all logits: the lm_head sees every position
    if (progress) progress(std::min(start + len, n_tok), n_tok);
  }
  for (auto& [key, h] : acc) {
    const int64_t n = h->n_in;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) h->h[i * n + j] = h->h[j * n + i];
  }

  auto map = std::make_shared<HessianMap>();
  for (const ModuleInfo& m : list_modules(cfg, model.tensors())) {
    if (m.kind != ModuleKind::Linear && m.kind != ModuleKind::LmHead) continue;
    auto it = acc.find({input_role(m.role, model.spec()), m.kind == ModuleKind::LmHead ? -1 : m.layer});
    if (it != acc.end() && it->second->n_in == m.n_in) (*map)[m.name] = it->second;
  }
  return map;
}

CalibrateFn gptq_calibrator(const std::filesystem::path& model_dir,
                            const std::filesystem::path& text, const CalibrationOptions& copts,
                            GptqCalibration gopts, std::shared_ptr<std::vector<std::string>> missing,
                            const std::function<void(int64_t, int64_t)>& progress) {
  auto model = Model::load(model_dir);
  auto hessians = collect_hessians(*model, text, copts, progress);
  return make_gptq_calibrator(std::move(hessians), gopts, std::move(missing));
}

}  // namespace qllm
