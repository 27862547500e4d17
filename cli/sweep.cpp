// qllm sweep: quantize a model every supported way and measure what each way costs.
//   qllm sweep MODEL_DIR --text FILE --out REPORT_DIR [--calib FILE] [--method lines]
//              [--ctx N] [--qtypes int8,int4,...] [--decode-tokens 64] [--keep-models]
// For each qtype x optimizer x (lm_head kept float | quantized) it runs `quantize`, then
// perplexity and KL divergence against the float model on the same windows, and a short greedy
// decode for speed. Writes REPORT_DIR/report.md (one table row per variant) and three charts:
// sqnr_per_layer.svg (weight error per layer), size_vs_kl.svg, tokens_per_s.svg.
// gptq variants need --calib (a calibration text; use one that is not the evaluation text).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "command.h"
#include "kernels/cpu/dispatch.h"
#include "quant/quantize_model.h"
#include "runtime/calibration.h"
#include "runtime/generate.h"
#include "runtime/perplexity_run.h"
#include "runtime/session.h"
#include "util/error.h"
#include "util/svg_chart.h"
#include "util/thread_pool.h"

namespace fs = std::filesystem;

namespace qllm::cli {
namespace {

struct Opts {
  std::string model_dir, text, out, calib, method = "lines", qtypes = "int8,float8,int4,int2";
  int64_t ctx = 0, decode_tokens = 128, calib_tokens = 16384;
  int threads = 0;
  bool keep_models = false;
};

struct Variant {
  QType qtype;
  std::string optimizer;  // absmax, max, search, gptq
  bool head = false;      // lm_head quantized too
  std::string name() const {
    return fmt::format("{}-{}{}", qtype_name(qtype), optimizer, head ? "+head" : "");
  }
};

struct Row {
  Variant v;
  bool is_base = false;
  uint64_t file_bytes = 0, footprint = 0;
  PerplexityRun ppl;
  double decode_tok_s = 0;
  std::vector<std::pair<std::string, double>> sqnr;  // module -> dB
};

double mib(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

// "model.layers.3.mlp.down_proj" -> "3.down_proj"; "transformer.h.0.attn.c_attn" -> "0.c_attn".
std::string short_module(const std::string& m) {
  const size_t last = m.rfind('.');
  const std::string leaf = last == std::string::npos ? m : m.substr(last + 1);
  for (const char* key : {"layers.", "h."}) {
    const size_t p = m.find(key);
    if (p == std::string::npos) continue;
    const size_t b = p + std::strlen(key), e = m.find('.', b);
    if (e != std::string::npos && e > b) return m.substr(b, e - b) + "." + leaf;
  }
  return leaf;
}

// Best of 3 runs: a decode of a small model takes milliseconds, so one run mostly measures
// whatever else the machine was doing.
double decode_speed(const Model& model, int64_t n_tokens) {
  constexpr int kRuns = 3;
  Session s(model);
  std::vector<int32_t> prompt;
  if (auto bos = model.tokenizer().bos_id()) prompt.push_back(*bos);
  else prompt.push_back(0);
  GenerateOptions g;
  g.max_new_tokens = std::min<int64_t>(n_tokens, model.config().n_ctx - 1);
  double best = 0;
  for (int run = 0; run < kRuns; ++run) {
    GenerateResult r = generate(s, prompt, g);
    if (r.decode_seconds > 0) best = std::max(best, static_cast<double>(r.decode_steps) / r.decode_seconds);
  }
  return best;
}

std::vector<Variant> variants(const std::vector<QType>& qtypes, bool with_gptq) {
  std::vector<Variant> v;
  for (QType q : qtypes) {
    std::vector<std::string> opts;
    if (qtype_info(q).affine) {
      opts = {"max", "search"};
      if (with_gptq) opts.push_back("gptq");
    } else {
      opts = {"absmax"};
    }
    for (bool head : {false, true})
      for (const auto& o : opts) v.push_back({q, o, head});
  }
  return v;
}

std::string fmt_pct(double v) { return fmt::format("{:+.2f}%", v); }

void write_report(const Opts& o, const std::vector<Row>& rows, const fs::path& dir,
                  const std::string& command) {
  std::ostringstream md;
  const Row& base = rows.front();
  md << "# Quantization sweep\n\n";
  md << fmt::format("- model: `{}`\n- evaluation text: `{}` ({} tokens scored, method `{}`, ctx {})\n",
                    o.model_dir, o.text, base.ppl.n_scored, ppl_method_name(base.ppl.result.method),
                    base.ppl.ctx);
  md << fmt::format("- calibration text (gptq): {}\n", o.calib.empty() ? "none (gptq skipped)" : "`" + o.calib + "`");
  md << fmt::format("- CPU kernels: {}, {} threads; decode speed: {} greedy tokens after BOS, best of 3\n",
                    active_isa(), ThreadPool::global().size(), o.decode_tokens);
  md << fmt::format("- command: `{}`\n\n", command);
  md << "KL is KL(float || quantized) per scored token in nats; top-1 is how often both models "
        "rank the same token first. `+head` variants quantize the lm_head too.\n\n";
  md << "| variant | file size | footprint | ppl | Δppl | KL mean | KL p99 | top-1 | decode tok/s |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const Row& r : rows) {
    const PplResult& p = r.ppl.result;
    if (r.is_base) {
      md << fmt::format("| float (base) | {:.3f} MiB | {:.3f} MiB | {:.4f} | | | | | {:.0f} |\n",
                        mib(r.file_bytes), mib(r.footprint), p.model.ppl(), r.decode_tok_s);
      continue;
    }
    md << fmt::format("| {} | {:.3f} MiB | {:.3f} MiB | {:.4f} | {} | {:.5f} | {:.4f} | {:.2f}% | {:.0f} |\n",
                      r.v.name(), mib(r.file_bytes), mib(r.footprint), p.model.ppl(),
                      fmt_pct(100.0 * (p.model.ppl() / p.base->ppl() - 1.0)), p.kl->mean, p.kl->p99,
                      100.0 * p.kl->top1_agree, r.decode_tok_s);
  }
  md << "\n![weight SQNR per layer](sqnr_per_layer.svg)\n\n![size vs KL](size_vs_kl.svg)\n\n"
        "![decode speed](tokens_per_s.svg)\n";
  const fs::path tmp = dir / "report.md.tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << md.str();
    if (!f.flush()) fail(tmp, "write failed");
  }
  fs::rename(tmp, dir / "report.md");

  // ---- charts ----
  Chart sq;
  sq.kind = ChartKind::Line;
  sq.title = "Weight error per layer (SQNR, higher is better)";
  sq.x_label = "layer.module";
  sq.y_label = "SQNR (dB)";
  for (const Row& r : rows) {
    if (r.is_base || r.v.head || r.sqnr.empty()) continue;
    if (sq.categories.empty())
      for (const auto& [m, db] : r.sqnr) sq.categories.push_back(short_module(m));
    ChartSeries s{r.v.name(), {}, {}, {}};
    for (const auto& [m, db] : r.sqnr) s.y.push_back(db);
    sq.series.push_back(std::move(s));
  }
  sq.width = 1000;
  write_svg(dir / "sqnr_per_layer.svg", sq);

  Chart kl;
  kl.kind = ChartKind::Scatter;
  kl.title = "File size vs KL divergence from the float model";
  kl.x_label = "file size (MiB)";
  kl.y_label = "mean KL (nats, log scale)";
  kl.log_y = true;
  std::map<std::string, ChartSeries> by_qtype;
  for (const Row& r : rows) {
    if (r.is_base) continue;
    ChartSeries& s = by_qtype[std::string(qtype_name(r.v.qtype))];
    s.name = std::string(qtype_name(r.v.qtype));
    s.x.push_back(mib(r.file_bytes));
    s.y.push_back(std::max(r.ppl.result.kl->mean, 1e-7));
    s.labels.push_back(r.v.optimizer + (r.v.head ? "+head" : ""));
  }
  for (auto& [k, s] : by_qtype) kl.series.push_back(std::move(s));
  kl.width = 1000;
  write_svg(dir / "size_vs_kl.svg", kl);

  Chart tps;
  tps.kind = ChartKind::Bar;
  tps.title = "Decode speed (greedy, one token per step)";
  tps.y_label = "tokens / s";
  ChartSeries s{"decode tok/s", {}, {}, {}};
  for (const Row& r : rows) {
    tps.categories.push_back(r.is_base ? "float" : r.v.name());
    s.y.push_back(r.decode_tok_s);
  }
  tps.series.push_back(std::move(s));
  tps.width = 1000;
  write_svg(dir / "tokens_per_s.svg", tps);
}

int run(const Opts& o, const std::string& command) {
  if (o.threads > 0) ThreadPool::set_global_threads(o.threads);
  const std::optional<PplMethod> method = ppl_method_from_name(o.method);
  if (!method) fail_usage("unknown --method '{}' (expected chunks, stride or lines)", o.method);
  std::vector<QType> qtypes;
  {
    std::stringstream ss(o.qtypes);
    std::string item;
    while (std::getline(ss, item, ',')) {
      auto q = qtype_from_name(item);
      if (!q || is_float_qtype(*q)) fail_usage("--qtypes: unknown '{}' (int8, float8, int4, int2)", item);
      qtypes.push_back(*q);
    }
  }
  const fs::path dir = o.out;
  fs::create_directories(dir);
  const fs::path models = dir / "models";

  auto base = Model::load(o.model_dir);
  const PerplexityOptions popts{*method, o.ctx, 0};
  std::vector<Row> rows;
  {
    Row r;
    r.is_base = true;
    for (const auto& f : base->tensors().files()) r.file_bytes += f->file_size();
    for (const TensorRef& t : base->tensors().all()) r.footprint += t.bytes.size();
    std::fprintf(stderr, "sweep: float base\n");
    r.ppl = run_perplexity(*base, nullptr, o.text, popts);
    r.decode_tok_s = decode_speed(*base, o.decode_tokens);
    rows.push_back(std::move(r));
  }
  std::shared_ptr<const HessianMap> hessians;
  if (!o.calib.empty()) {
    std::fprintf(stderr, "sweep: collecting calibration statistics from %s\n", o.calib.c_str());
    hessians = collect_hessians(*base, o.calib, {0, o.calib_tokens});
  }
  for (const Variant& v : variants(qtypes, hessians != nullptr)) {
    std::fprintf(stderr, "sweep: %s\n", v.name().c_str());
    QuantizeModelOptions q;
    q.qtype = v.qtype;
    q.force = true;
    if (!v.head) q.exclude = {"lm_head"};
    if (v.optimizer == "gptq") {
      q.optimizer = WeightOptimizer::Search;
      q.calibration = "gptq";
      q.calibrate = make_gptq_calibrator(hessians, {});
    } else {
      q.optimizer = optimizer_from_name(v.optimizer);
    }
    const fs::path out = models / v.name();
    QuantizeReport qr = quantize_model(o.model_dir, out, q);
    Row r;
    r.v = v;
    r.file_bytes = qr.file_bytes_after;
    r.footprint = qr.footprint_after;
    for (const auto& l : qr.layers) r.sqnr.emplace_back(l.module, l.error.sqnr_db());
    {
      auto m = Model::load(out);
      r.ppl = run_perplexity(*m, base.get(), o.text, popts);
      r.decode_tok_s = decode_speed(*m, o.decode_tokens);
    }
    if (!o.keep_models) fs::remove_all(out);
    const PplResult& p = r.ppl.result;
    std::fprintf(stderr, "  ppl %.4f (%+.2f%%), KL %.5f, top-1 %.2f%%, %.0f tok/s\n", p.model.ppl(),
                 100.0 * (p.model.ppl() / p.base->ppl() - 1.0), p.kl->mean, 100.0 * p.kl->top1_agree,
                 r.decode_tok_s);
    rows.push_back(std::move(r));
  }
  if (!o.keep_models) fs::remove(models);
  write_report(o, rows, dir, command);
  std::printf("%s\n", (dir / "report.md").string().c_str());
  return 0;
}

Command kCmd{"sweep", "Quantize every way, measure perplexity, KL and speed, write a report",
             [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("model_dir", o->model_dir, "Hugging Face model directory (float)")->required();
  app.add_option("--text,-f", o->text, "Evaluation text")->required();
  app.add_option("--out", o->out, "Report directory (created)")->required();
  app.add_option("--calib", o->calib, "Calibration text for the gptq variants (skipped without)");
  app.add_option("--calib-tokens", o->calib_tokens, "Calibration tokens (default 16384)");
  app.add_option("--method", o->method, "Perplexity method: lines (default), chunks or stride");
  app.add_option("--ctx,-c", o->ctx, "Context length (default: min(512, model's))");
  app.add_option("--qtypes", o->qtypes, "Comma-separated: int8,float8,int4,int2 (default all)");
  app.add_option("--decode-tokens", o->decode_tokens, "Greedy tokens for the speed measurement");
  app.add_flag("--keep-models", o->keep_models, "Keep the quantized models under REPORT_DIR/models");
  app.add_option("-t,--threads", o->threads, "Worker threads (default: all cores)");
  return std::function<int()>([o] {
    std::string c = fmt::format("qllm sweep {} --text {} --out {}", o->model_dir, o->text, o->out);
    if (!o->calib.empty()) c += " --calib " + o->calib;
    c += " --method " + o->method;
    if (o->ctx) c += fmt::format(" --ctx {}", o->ctx);
    c += " --qtypes " + o->qtypes;
    return run(*o, c);
  });
}};

}  // namespace
}  // namespace qllm::cli
