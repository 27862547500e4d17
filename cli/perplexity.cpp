// qllm perplexity: perplexity of a model on a text, and with --base its KL divergence from a
// base model (runtime/perplexity.h describes the three methods).
//   qllm perplexity MODEL_DIR --text FILE [--ctx 512] [--method chunks|stride|lines]
//                   [--stride N] [--chunks N] [--base BASE_DIR] [--json] [--threads N]
// Results go to stdout (text or one JSON object), the progress bar to stderr.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/perplexity_run.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string model_dir, text, method = "chunks", base_dir, device = "cpu";
  int64_t ctx = 0, stride = 0, chunks = 0;
  int threads = 0;
  bool json = false;
};

// One line on a terminal, redrawn at most every 100 ms: windows done and the running ppl.
class Progress {
 public:
  Progress() : tty_(::isatty(2)) {}
  void update(int64_t done, int64_t total, const NllStats& s) {
    if (!tty_) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int width = 30;
    const int filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
    std::fprintf(stderr, "\r[%s%s] %lld/%lld  ppl %.4f", std::string(filled, '=').c_str(),
                 std::string(width - filled, ' ').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), s.ppl());
    drawn_ = true;
  }
  void finish() {
    if (drawn_) std::fprintf(stderr, "\r%70s\r", "");
    drawn_ = false;
  }

 private:
  bool tty_, drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

nlohmann::ordered_json to_json(const Opts& o, const PerplexityRun& run) {
  const PplResult& r = run.result;
  nlohmann::ordered_json j = {{"model", o.model_dir},
                              {"text", o.text},
                              {"method", ppl_method_name(r.method)},
                              {"ctx", run.ctx}};
  if (r.method == PplMethod::Stride) j["stride"] = run.stride;
  j["n_text_tokens"] = run.n_text_tokens;
  j["n_windows"] = r.n_windows;
  j["n_scored"] = r.model.count();
  j["mean_nll"] = r.model.mean_nll();
  j["ppl"] = r.model.ppl();
  j["ppl_stderr"] = r.model.ppl_stderr();
  if (r.base && r.kl) {
    j["base"] = {{"model", o.base_dir},
                 {"mean_nll", r.base->mean_nll()},
                 {"ppl", r.base->ppl()},
                 {"ppl_stderr", r.base->ppl_stderr()}};
    j["delta_ppl"] = r.model.ppl() - r.base->ppl();
    j["delta_ppl_pct"] = 100.0 * (r.model.ppl() / r.base->ppl() - 1.0);
    j["kl"] = {{"mean", r.kl->mean}, {"mean_stderr", r.kl->mean_stderr},
               {"median", r.kl->median}, {"p99", r.kl->p99}, {"max", r.kl->max}};
    j["top1_agree_pct"] = 100.0 * r.kl->top1_agree;
  }
  return j;
}

void print_text(const Opts& o, const PerplexityRun& run) {
  const PplResult& r = run.result;
  std::printf("model:   %s\n", o.model_dir.c_str());
  std::printf("text:    %s (%lld tokens)\n", o.text.c_str(), static_cast<long long>(run.n_text_tokens));
  std::printf("method:  %s, ctx %lld", std::string(ppl_method_name(r.method)).c_str(),
              static_cast<long long>(run.ctx));
  if (r.method == PplMethod::Stride) std::printf(", stride %lld", static_cast<long long>(run.stride));
  std::printf(" (%s)\n", std::string(ppl_method_description(r.method)).c_str());
  std::printf("scored:  %lld tokens in %lld windows\n", static_cast<long long>(r.model.count()),
              static_cast<long long>(r.n_windows));
  std::printf("ppl:     %.4f +/- %.4f (mean nll %.6f)\n", r.model.ppl(), r.model.ppl_stderr(),
              r.model.mean_nll());
  if (!r.base || !r.kl) return;
  std::printf("base:    %s\n", o.base_dir.c_str());
  std::printf("base ppl: %.4f +/- %.4f (mean nll %.6f)\n", r.base->ppl(), r.base->ppl_stderr(),
              r.base->mean_nll());
  std::printf("delta ppl: %+.4f (%+.3f%%)\n", r.model.ppl() - r.base->ppl(),
              100.0 * (r.model.ppl() / r.base->ppl() - 1.0));
  std::printf("KL(base||model): mean %.6f +/- %.6f, median %.6f, p99 %.6f, max %.6f\n",
              r.kl->mean, r.kl->mean_stderr, r.kl->median, r.kl->p99, r.kl->max);
  std::printf("top-1 agreement: %.3f%%\n", 100.0 * r.kl->top1_agree);
}

int run(const Opts& o) {
  if (o.threads > 0) ThreadPool::set_global_threads(o.threads);
  const std::optional<PplMethod> method = ppl_method_from_name(o.method);
  if (!method) fail_usage("unknown --method '{}' (expected chunks, stride or lines)", o.method);
  if (o.ctx < 0) fail_usage("--ctx {} must be positive", o.ctx);
  if (o.stride < 0) fail_usage("--stride {} must be positive", o.stride);
  if (o.chunks < 0) fail_usage("--chunks {} must be positive", o.chunks);
  auto model = Model::load(o.model_dir);
  std::unique_ptr<Model> base;
  if (!o.base_dir.empty()) base = Model::load(o.base_dir);
  Progress progress;
  PerplexityRun run = run_perplexity(
      *model, base.get(), o.text, {*method, o.ctx, o.stride, o.chunks, o.device == "cuda"},
      [&](int64_t d, int64_t t, const NllStats& s) { progress.update(d, t, s); });
  progress.finish();
  if (o.json) std::printf("%s\n", to_json(o, run).dump(2).c_str());
  else print_text(o, run);
  return 0;
}

Command kCmd{"perplexity", "Perplexity on a text, and KL divergence against a base model",
             [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("model_dir", o->model_dir, "Hugging Face model directory")->required();
  app.add_option("--text,-f", o->text, "Text file to evaluate on")->required();
  app.add_option("--ctx,-c", o->ctx, "Context (window) length in tokens (default: min(512, model's))");
  app.add_option("--method", o->method, "chunks (llama.cpp), stride (Hugging Face) or lines");
  app.add_option("--stride", o->stride, "Stride of the stride method (default: ctx/2)");
  app.add_option("--chunks", o->chunks, "Evaluate only the first N windows (default: all)");
  app.add_option("--base", o->base_dir, "Base model directory: also report KL divergence and top-1");
  app.add_flag("--json", o->json, "Print one JSON object");
  app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("-t,--threads", o->threads, "Worker threads (default: all cores)");
  return std::function<int()>([o] { return run(*o); });
}};

}  // namespace
}  // namespace qllm::cli
