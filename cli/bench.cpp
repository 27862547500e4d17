// qllm bench: prompt-processing and generation speed, like llama-bench, plus what bounds them.
//   qllm bench MODEL_DIR [-p 128] [-n 64] [-t N] [-r 3] [--json]
// Besides tokens/s (mean ± standard deviation over -r repetitions) it reports the model's bytes,
// the bytes one generated token reads (weights + the average KV cache), this machine's measured
// memory read bandwidth, and the fraction of that bound the generation speed reaches. The
// bandwidth is measured beside the generation runs, before the first, between them and after
// the last, and each run is set against the mean of the two measurements around it: on a
// shared host the bandwidth drifts within minutes, and a single measurement apart from the runs
// moved the fraction by as much as the code did. Where the bytes a token reads fit in the
// last-level cache, the report says so: they may then come from cache, past the bound (GPT-2
// int8 decode reached 104% of it on a 16-core Xeon with 300 MiB of L3).
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "command.h"
#include "kernels/cpu/dispatch.h"
#include "runtime/bench.h"
#include "runtime/cuda/cuda_bench.h"
#include "runtime/model.h"
#include "util/cpu_cache.h"
#include "util/membw.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace qllm::cli {
namespace {

// Passes over the probe's buffer per bandwidth measurement; the best counts.
constexpr int kPassesPerMeasurement = 3;

// Peak resident memory of the process so far, in bytes.
double peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0;  // Linux reports KiB
}

struct Opts {
  std::string model_dir;
  int64_t n_prompt = 128, n_gen = 64;
  int threads = 0, reps = 3;
  bool json = false;
  std::string device = "cpu";
};

int run(const Opts& o) {
  if (o.device == "cuda") return cuda::run_bench({o.model_dir, o.n_prompt, o.n_gen, o.reps, o.json});
  if (o.n_prompt < 0 || o.n_gen < 0 || o.reps < 1)
    fail_usage("bench: -p and -n must be >= 0 and -r >= 1");
  auto t_start = std::chrono::steady_clock::now();
  if (o.threads > 0) ThreadPool::set_global_threads(o.threads);
  ThreadPool& pool = ThreadPool::global();
  auto model = Model::load(o.model_dir);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  const ModelConfig& cfg = model->config();
  if (std::max(o.n_prompt, o.n_gen) > cfg.n_ctx)
    fail_usage("bench: -p/-n exceed the model's context of {}", cfg.n_ctx);

  SpeedStats pp, tg;
  if (o.n_prompt > 0) pp = bench_prompt(*model, o.n_prompt, o.reps);
  // The probe's buffer is allocated at its first measurement, after the runs so far and the
  // generation session's warm-up, so that peak RSS counts the model, its sessions and KV
  // caches, and not the buffer.
  double peak_rss = 0;
  std::unique_ptr<ReadBandwidthProbe> probe;
  std::vector<double> bw_marks;  // before the first generation run, between runs, after the last
  auto measure_bandwidth = [&] {
    if (!probe) {
      peak_rss = peak_rss_bytes();
      probe = std::make_unique<ReadBandwidthProbe>(pool);
    }
    bw_marks.push_back(probe->measure(kPassesPerMeasurement));
  };
  if (o.n_gen > 0) tg = bench_generate(*model, o.n_gen, o.reps, measure_bandwidth);
  else measure_bandwidth();

  const DecodeTraffic traffic = decode_traffic(*model);
  const HugePageShare pages = weight_page_share(*model);
  // Average cached positions read per step over a run of n_gen steps from an empty context.
  const double kv_avg = traffic.kv_bytes_per_position * (o.n_gen + 1) / 2.0;
  const double bytes_per_token = traffic.weight_bytes + kv_avg;
  // Each generation run against the bandwidth around it.
  std::vector<double> bw_runs, fraction_runs;
  for (std::size_t r = 0; r < tg.tokens_per_s.size(); ++r) {
    bw_runs.push_back((bw_marks[r] + bw_marks[r + 1]) / 2);
    fraction_runs.push_back(tg.tokens_per_s[r] * bytes_per_token / bw_runs.back());
  }
  const double bw = o.n_gen > 0 ? mean(bw_runs) : bw_marks[0];
  const double bound_tps = bw / bytes_per_token;
  const double fraction = mean(fraction_runs);
  const double model_bytes = static_cast<double>(model->tensors().total_file_bytes());
  const std::size_t llc = last_level_cache_bytes();
  const bool fits_in_cache = llc > 0 && bytes_per_token <= static_cast<double>(llc);

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model_dir;
    j["threads"] = pool.size();
    j["isa"] = active_isa();
    j["load_seconds"] = load_s;
    j["model_file_bytes"] = model_bytes;
    j["peak_rss_bytes"] = peak_rss;
    j["weight_bytes_per_token"] = traffic.weight_bytes;
    j["weight_resident_bytes"] = pages.resident_bytes;
    j["weight_huge_page_bytes"] = pages.huge_bytes;
    j["bytes_per_token"] = bytes_per_token;
    j["memory_bandwidth_bytes_per_s"] = bw;
    if (o.n_gen > 0) j["memory_bandwidth_runs"] = bw_runs;
    j["last_level_cache_bytes"] = llc;  // 0: unknown
    j["bytes_per_token_fit_in_cache"] = fits_in_cache;
    if (o.n_prompt > 0)
      j["pp"] = {{"n", o.n_prompt}, {"tokens_per_s", pp.mean()}, {"stddev", pp.stddev()}, {"runs", pp.tokens_per_s}};
    if (o.n_gen > 0) {
      j["tg"] = {{"n", o.n_gen}, {"tokens_per_s", tg.mean()}, {"stddev", tg.stddev()}, {"runs", tg.tokens_per_s}};
      j["tg_bandwidth_bound_tokens_per_s"] = bound_tps;
      j["tg_fraction_of_bandwidth_bound"] = fraction;
      j["tg_fraction_runs"] = fraction_runs;
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model       %s\n", o.model_dir.c_str());
  std::printf("threads     %d (%s kernels)\n", pool.size(), active_isa());
  std::printf("load        %.3f s\n", load_s);
  std::printf("model size  %.2f MiB on disk, %.2f MiB of weights read per generated token\n",
              model_bytes / 1048576.0, traffic.weight_bytes / 1048576.0);
  std::printf("peak RSS    %.2f MiB (%.2fx the model files)\n", peak_rss / 1048576.0,
              peak_rss / model_bytes);
  if (pages.resident_bytes > 0)
    std::printf("pages       %.0f%% of the weights' %.2f MiB resident in 2 MiB pages\n",
                100.0 * static_cast<double>(pages.huge_bytes) / static_cast<double>(pages.resident_bytes),
                pages.resident_bytes / 1048576.0);
  if (o.n_gen > 0)
    std::printf("bandwidth   %.1f GB/s measured (read) beside the generation runs, %.1f-%.1f\n", bw / 1e9,
                *std::min_element(bw_marks.begin(), bw_marks.end()) / 1e9,
                *std::max_element(bw_marks.begin(), bw_marks.end()) / 1e9);
  else
    std::printf("bandwidth   %.1f GB/s measured (read)\n", bw / 1e9);
  std::printf("\n| test  |            t/s |\n|-------|----------------|\n");
  if (o.n_prompt > 0) std::printf("| pp%-3lld | %7.2f ± %5.2f |\n", static_cast<long long>(o.n_prompt), pp.mean(), pp.stddev());
  if (o.n_gen > 0) std::printf("| tg%-3lld | %7.2f ± %5.2f |\n", static_cast<long long>(o.n_gen), tg.mean(), tg.stddev());
  if (o.n_gen > 0) {
    std::printf("\ngeneration reads %.2f MiB per token: bound %.1f t/s at %.1f GB/s; reached %.0f%% ± %.0f%%\n",
                bytes_per_token / 1048576.0, bound_tps, bw / 1e9, 100.0 * fraction, 100.0 * stddev(fraction_runs));
    if (fits_in_cache)
      std::printf("note: %.2f MiB fit in the %.0f MiB last-level cache: reads may hit it and pass the bound\n",
                  bytes_per_token / 1048576.0, static_cast<double>(llc) / 1048576.0);
  }
  return 0;
}

Command kCmd{"bench", "Measure prompt and generation speed against the memory-bandwidth bound",
             [](CLI::App& app) {
               auto o = std::make_shared<Opts>();
               app.add_option("model_dir", o->model_dir, "Model directory")->required();
               app.add_option("-p,--prompt-tokens", o->n_prompt, "Prompt tokens per pp run")->capture_default_str();
               app.add_option("-n,--gen-tokens", o->n_gen, "Tokens per tg run")->capture_default_str();
               app.add_option("-t,--threads", o->threads, "Threads (default: all cores)");
               app.add_option("-r,--repetitions", o->reps, "Repetitions")->capture_default_str();
               app.add_flag("--json", o->json, "Print JSON");
               app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
               return std::function<int()>([o] { return run(*o); });
             }};

}  // namespace
}  // namespace qllm::cli
