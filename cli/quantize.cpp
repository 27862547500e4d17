// qllm quantize: a Hugging Face model directory -> optimum-quanto's format (quant/quantize_model.h).
//
// Prints one row per quantized layer (error of the dequantized weights: max |err|, RMSE, SQNR)
// and totals (memory footprint and file sizes before and after) on stdout, or one JSON object
// with --json; warnings and the progress bar go to stderr.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.h"
#include "format/safetensors_writer.h"
#include "quant/quantize_model.h"
#include "runtime/calibration.h"
#include "util/error.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string in, out, weights, optimizer, max_shard;
  int64_t group_size = 0;
  std::vector<std::string> include, exclude;
  bool embeddings = false, force = false, json = false;
  std::string calib;  // --optimizer gptq: calibration text
  int64_t calib_tokens = 16384;
  bool act_order = false;
};

std::string valid_weights() {
  std::string s;
  for (const auto& q : kQTypes)
    if (!is_float_qtype(q.qtype)) s += (s.empty() ? "" : ", ") + std::string(q.name);
  return s;
}

QType parse_weights(const std::string& w) {
  if (auto q = qtype_from_name(w); q && !is_float_qtype(*q)) return *q;
  if (auto q = qtype_from_quanto_name(w)) return *q;
  fail_usage("unknown --weights '{}' (expected one of {})", w, valid_weights());
}

std::string mib(uint64_t b) { return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1024.0 * 1024.0)); }
std::string db(double v) { return std::isinf(v) ? "inf" : fmt::format("{:.2f}", v); }
nlohmann::json db_json(double v) { return std::isinf(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

// A one-line progress bar, redrawn at most every 100 ms, only on a terminal.
class Progress {
 public:
  Progress() : tty_(::isatty(2)) {}
  ~Progress() { finish(); }
  void update(std::string_view stage, uint64_t done, uint64_t total) {
    if (!tty_ || total == 0) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int width = 30, filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r%-8s [%s%s] %3d%%", std::string(stage).c_str(), std::string(filled, '=').c_str(),
                 std::string(width - filled, ' ').c_str(), static_cast<int>(100 * done / total));
    drawn_ = true;
  }
  void finish() {
    if (drawn_) std::fprintf(stderr, "\r%60s\r", "");
    drawn_ = false;
  }

 private:
  bool tty_, drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

void print_table(const QuantizeReport& r) {
  const bool base = !r.layers.empty() && r.layers[0].baseline.has_value();
  std::printf("%-44s %-6s %-11s %5s %10s %10s %8s", "module", "qtype", "shape", "group", "max|err|", "rmse",
              "sqnr_dB");
  if (base) std::printf(" %10s %8s %7s", "max:rmse", "max:sqnr", "gain_dB");
  std::printf("\n");
  for (const auto& l : r.layers) {
    std::printf("%-44s %-6s %-11s %5s %10.3e %10.3e %8s", l.module.c_str(), std::string(qtype_name(l.qtype)).c_str(),
                fmt::format("{}x{}", l.n_out, l.n_in).c_str(),
                l.group_size ? std::to_string(l.group_size).c_str() : "-", l.error.max_abs, l.error.rmse(),
                db(l.error.sqnr_db()).c_str());
    if (l.baseline)
      std::printf(" %10.3e %8s %7s", l.baseline->rmse(), db(l.baseline->sqnr_db()).c_str(),
                  db(l.error.sqnr_db() - l.baseline->sqnr_db()).c_str());
    std::printf("%s\n", l.quanto_loadable ? "" : "  (not loadable by optimum-quanto)");
  }
  std::printf("\n%zu layers quantized, optimizer %s: rmse %.3e, sqnr %s dB, max|err| %.3e\n", r.layers.size(),
              r.calibration.empty() ? std::string(optimizer_name(r.optimizer)).c_str() : r.calibration.c_str(), r.total.rmse(), db(r.total.sqnr_db()).c_str(),
              r.total.max_abs);
  auto pct = [](uint64_t a, uint64_t b) { return b ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  std::printf("memory footprint: %s -> %s (%.1f%%)\n", mib(r.footprint_before).c_str(),
              mib(r.footprint_after).c_str(), pct(r.footprint_after, r.footprint_before));
  std::printf("weight files:     %s -> %s (%.1f%%)\n", mib(r.file_bytes_before).c_str(),
              mib(r.file_bytes_after).c_str(), pct(r.file_bytes_after, r.file_bytes_before));
}

nlohmann::json to_json(const QuantizeReport& r) {
  using J = nlohmann::ordered_json;
  J layers = J::array();
  for (const auto& l : r.layers) {
    J j = {{"module", l.module}, {"qtype", qtype_info(l.qtype).quanto_name}, {"dtype", dtype_name(l.dtype)},
           {"n_out", l.n_out}, {"n_in", l.n_in}, {"group_size", l.group_size},
           {"quanto_loadable", l.quanto_loadable}, {"max_abs_err", l.error.max_abs}, {"rmse", l.error.rmse()},
           {"sqnr_db", db_json(l.error.sqnr_db())}};
    if (l.baseline) {
      j["baseline_rmse"] = l.baseline->rmse();
      j["baseline_sqnr_db"] = db_json(l.baseline->sqnr_db());
    }
    layers.push_back(j);
  }
  J files = J::array();
  for (const auto& f : r.files) files.push_back(f.string());
  J j = {{"optimizer", r.calibration.empty() ? std::string(optimizer_name(r.optimizer)) : r.calibration},
         {"layers", layers},
         {"rmse", r.total.rmse()},
         {"sqnr_db", db_json(r.total.sqnr_db())},
         {"max_abs_err", r.total.max_abs},
         {"footprint_before", r.footprint_before},
         {"footprint_after", r.footprint_after},
         {"file_bytes_before", r.file_bytes_before},
         {"file_bytes_after", r.file_bytes_after},
         {"files", files},
         {"warnings", r.warnings}};
  return j;
}

Command kCmd{"quantize", "Quantize a model to optimum-quanto's format (int8, int4, int2, float8)", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("input", o->in, "Hugging Face model directory")->required();
  app.add_option("output", o->out, "Output directory (created; see --force)")->required();
  app.add_option("--weights,-w", o->weights, "Weight type: int8, int4, int2 or float8")->required();
  app.add_option("--group-size", o->group_size, "int4/int2 group size (default: optimum-quanto's rule)");
  app.add_option("--include", o->include, "Only modules matching this fnmatch pattern (repeatable)");
  app.add_option("--exclude", o->exclude, "Skip modules matching this fnmatch pattern (repeatable)");
  app.add_option("--optimizer", o->optimizer, "absmax (8-bit), max (default for int4/int2), search, hqq or gptq");
  app.add_option("--calib", o->calib, "gptq: calibration text file");
  app.add_option("--calib-tokens", o->calib_tokens, "gptq: calibration tokens (default 16384)");
  app.add_flag("--act-order", o->act_order, "gptq: quantize columns by decreasing input energy");
  app.add_flag("--quantize-embeddings", o->embeddings,
               "Also quantize the token embedding (optimum-quanto cannot load it)");
  app.add_option("--max-shard-size", o->max_shard, "Shard past this size, e.g. 2GB (default 50GB)");
  app.add_flag("--force", o->force, "Replace an existing output directory");
  app.add_flag("--json", o->json, "Print the report as JSON");
  return std::function<int()>([o] {
    QuantizeModelOptions q;
    q.qtype = parse_weights(o->weights);
    if (o->group_size) q.group_size = o->group_size;
    if (o->optimizer == "gptq") {
      // GPTQ chooses the codes and refits the grid from calibration data (quant/calibrate.h).
      if (!qtype_info(q.qtype).affine) fail_usage("--optimizer gptq applies to int4 and int2 only");
      if (o->calib.empty()) fail_usage("--optimizer gptq needs --calib FILE (a calibration text)");
      // The search optimizer's grid is GPTQ's starting point; refits follow (quant/gptq.h).
      q.optimizer = WeightOptimizer::Search;
      q.calibration = "gptq";
      const GptqCalibration g{0.01, o->act_order};
      q.calibrate = gptq_calibrator(o->in, o->calib, {0, o->calib_tokens}, g);
    } else if (!o->calib.empty()) {
      fail_usage("--calib applies to --optimizer gptq only");
    } else if (!o->optimizer.empty()) {
      q.optimizer = optimizer_from_name(o->optimizer);
      if (!q.optimizer) fail_usage("unknown --optimizer '{}' (expected absmax, max, search or hqq)", o->optimizer);
    }
    q.include = o->include;
    q.exclude = o->exclude;
    q.quantize_embeddings = o->embeddings;
    if (!o->max_shard.empty()) q.max_shard_bytes = parse_shard_size(o->max_shard);
    q.force = o->force;
    auto progress = std::make_shared<Progress>();
    q.progress = [progress](std::string_view s, uint64_t d, uint64_t t) { progress->update(s, d, t); };
    QuantizeReport r = quantize_model(o->in, o->out, q);
    progress->finish();
    for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (o->json) std::printf("%s\n", to_json(r).dump(2).c_str());
    else print_table(r);
    return 0;
  });
}};

}  // namespace
}  // namespace qllm::cli
