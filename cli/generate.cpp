// qllm generate: continue a prompt with a model, streaming the new text to stdout.
//   qllm generate MODEL_DIR (--prompt TEXT | --ids 1,2,3) [--chat] [--max-new-tokens N]
//                 [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]
//                 [--threads N] [--ignore-eos] [--json]
// Greedy by default. Stops at the EOS ids of generation_config.json (or config.json). Timing
// goes to stderr. Without a tokenizer in MODEL_DIR (e.g. random weights), --ids still works and
// the new ids are printed instead of text.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>

#include "command.h"
#include "runtime/generate.h"
#include "runtime/cuda/cuda_session.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "token_ids.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string model_dir;
  std::optional<std::string> prompt, ids;
  bool chat = false, json = false, ignore_eos = false;
  int64_t max_new_tokens = 128;
  float temperature = 0.0f, top_p = 1.0f, repetition_penalty = 1.0f;
  int top_k = 0, threads = 0;
  uint64_t seed = 0;
  std::string device = "cpu";
};

bool has_tokenizer(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::exists(dir / "tokenizer.json", ec) ||
         std::filesystem::exists(dir / "vocab.json", ec);
}

int run(const Opts& o) {
  if (o.prompt.has_value() == o.ids.has_value())
    fail_usage("generate: give exactly one of --prompt or --ids");
  if (o.chat && !o.prompt) fail_usage("generate: --chat needs --prompt");
  if (o.max_new_tokens < 0) fail_usage("--max-new-tokens must be >= 0 (got {})", o.max_new_tokens);
  if (!(o.temperature >= 0.0f)) fail_usage("--temperature must be >= 0 (got {})", o.temperature);
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) fail_usage("--top-p must be in (0, 1] (got {})", o.top_p);
  if (o.top_k < 0) fail_usage("--top-k must be >= 0 (got {})", o.top_k);
  if (!(o.repetition_penalty > 0.0f))
    fail_usage("--repetition-penalty must be > 0 (got {})", o.repetition_penalty);
  if (o.threads > 0) ThreadPool::set_global_threads(o.threads);

  // The tokenizer (0.2-0.3 s for Qwen2's 151k tokens) loads on another thread while the model
  // is mapped, repacked and its pages populated: the time to the first token is the longer of
  // the two, not their sum.
  const bool text_io = o.prompt.has_value() || has_tokenizer(o.model_dir);
  std::future<Tokenizer> tok_loading;
  if (text_io) tok_loading = std::async(std::launch::async, [&] { return Tokenizer::load(o.model_dir); });
  auto model = Model::load(o.model_dir);
  if (o.device != "cuda") model->populate();
  const ModelConfig& cfg = model->config();
  std::optional<Tokenizer> tok_storage;
  if (text_io) tok_storage.emplace(tok_loading.get());
  const Tokenizer* tok = text_io ? &*tok_storage : nullptr;

  std::vector<int32_t> prompt;
  if (o.prompt) {
    if (o.chat) {
      prompt = tok->encode(tok->apply_chat_template({{"user", *o.prompt}}), false);
    } else {
      prompt = tok->encode(*o.prompt, true);
    }
  } else {
    prompt = parse_token_ids("--ids", *o.ids);
  }
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt == 0) fail_usage("the prompt has no tokens");
  if (n_prompt > cfg.n_ctx)
    fail_usage("the prompt has {} tokens, more than the model's context of {}", n_prompt, cfg.n_ctx);
  for (std::size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] >= cfg.n_vocab)
      fail_usage("token id {} (prompt position {}) is outside the vocabulary (n_vocab = {})",
                 prompt[i], i, cfg.n_vocab);

  // Reserve only the context this run can use; generation stops at the model's limit.
  const int64_t n_ctx = std::min(cfg.n_ctx, n_prompt + std::max<int64_t>(o.max_new_tokens, 1));
  std::optional<Session> session;
  std::unique_ptr<cuda::CudaModel> gpu_model;
  std::unique_ptr<cuda::CudaSession> gpu_session;
  if (o.device == "cuda") {
    gpu_model = std::make_unique<cuda::CudaModel>(*model);
    gpu_session = std::make_unique<cuda::CudaSession>(*gpu_model, n_ctx);
  } else {
    session.emplace(*model, n_ctx);
  }
  GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampler = {o.temperature, o.top_k, o.top_p, o.repetition_penalty, o.seed};
  if (!o.ignore_eos) g.stop_ids = cfg.eos_ids;

  std::optional<StreamDecoder> stream;
  if (!o.json) {
    if (tok) stream.emplace(*tok, /*skip_special=*/true);
    if (o.prompt && !o.chat) std::fputs(o.prompt->c_str(), stdout);
    std::fflush(stdout);
  }
  auto on_token = [&](int32_t id) {
    if (o.json) return;
    if (stream) {
      std::fputs(stream->push(id).c_str(), stdout);
    } else {
      std::printf("%d ", id);
    }
    std::fflush(stdout);
  };
  GenerateResult r = gpu_session ? cuda::generate(*gpu_session, prompt, g, on_token)
                                 : generate(*session, prompt, g, on_token);

  if (o.json) {
    nlohmann::json j;
    j["ids"] = r.ids;
    if (tok) j["text"] = tok->decode(r.ids, /*skip_special=*/true);
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    if (stream) std::fputs(stream->flush().c_str(), stdout);
    std::fputs("\n", stdout);
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "prompt: %lld tokens in %.3f s (%.1f tok/s); generated: %zu tokens, %lld decode "
               "steps in %.3f s (%.2f tok/s); threads: %d\n",
               static_cast<long long>(n_prompt), r.prompt_seconds,
               r.prompt_seconds > 0 ? n_prompt / r.prompt_seconds : 0.0, r.ids.size(),
               static_cast<long long>(r.decode_steps), r.decode_seconds,
               r.decode_seconds > 0 ? r.decode_steps / r.decode_seconds : 0.0,
               ThreadPool::global().size());
  return 0;
}

Command kCmd{"generate", "Generate text from a prompt (greedy by default)", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("model_dir", o->model_dir, "Hugging Face model directory")->required();
  app.add_option("-p,--prompt", o->prompt, "Prompt text");
  app.add_option("--ids", o->ids, "Prompt as comma-separated token ids, e.g. 1,2,3");
  app.add_flag("--chat", o->chat, "Wrap the prompt as a user message with the chat template");
  app.add_option("-n,--max-new-tokens", o->max_new_tokens, "Tokens to generate at most")
      ->capture_default_str();
  app.add_option("--temperature", o->temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  app.add_option("--top-k", o->top_k, "Sample among the k most likely tokens; 0 = off");
  app.add_option("--top-p", o->top_p, "Nucleus sampling mass; 1 = off");
  app.add_option("--repetition-penalty", o->repetition_penalty, "HF repetition penalty; 1 = off");
  app.add_option("--seed", o->seed, "Random seed for sampling")->capture_default_str();
  app.add_option("-t,--threads", o->threads, "Worker threads (default: all cores)");
  app.add_flag("--ignore-eos", o->ignore_eos, "Do not stop at EOS (benchmarks)");
  app.add_flag("--json", o->json, "Print {\"ids\": [...], \"text\": \"...\"} of the new tokens");
  app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  return std::function<int()>([o] { return run(*o); });
}};

}  // namespace
}  // namespace qllm::cli
