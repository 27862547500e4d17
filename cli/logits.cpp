// qllm logits: run token ids through a model and save every position's logits.
//   qllm logits MODEL_DIR --ids 1,2,3 --out FILE.safetensors
// Writes one F32 tensor "logits" [T, n_vocab] (row t: the distribution after ids[0..t]), e.g. to
// compare with transformers' model(ids).logits.
#include <cstring>
#include <memory>
#include <optional>

#include "command.h"
#include "format/safetensors_writer.h"
#include "runtime/cuda/cuda_session.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "token_ids.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string model_dir, ids, out;
  int threads = 0;
  std::string device = "cpu";
};

int run(const Opts& o) {
  if (o.threads > 0) ThreadPool::set_global_threads(o.threads);
  const std::vector<int32_t> ids = parse_token_ids("--ids", o.ids);
  auto model = Model::load(o.model_dir);
  const ModelConfig& cfg = model->config();
  const auto n = static_cast<int64_t>(ids.size());
  if (n > cfg.n_ctx)
    fail_usage("--ids: {} tokens, more than the model's context of {}", n, cfg.n_ctx);
  std::optional<Session> session;
  std::unique_ptr<cuda::CudaModel> gpu_model;
  std::unique_ptr<cuda::CudaSession> gpu_session;
  const float* logits = nullptr;
  if (o.device == "cuda") {
    gpu_model = std::make_unique<cuda::CudaModel>(*model);
    gpu_session = std::make_unique<cuda::CudaSession>(*gpu_model, n);
    logits = gpu_session->forward(ids, /*all_logits=*/true);
  } else {
    session.emplace(*model, n);
    logits = session->forward(ids, /*all_logits=*/true);
  }
  std::vector<TensorToWrite> t;
  t.push_back({"logits", DType::F32, {n, cfg.n_vocab}, [&](std::span<std::byte> dst) {
                 std::memcpy(dst.data(), logits, dst.size());
               }});
  WriteOptions opts;
  opts.metadata = {{"format", "pt"}};
  write_safetensors(o.out, std::move(t), opts);
  return 0;
}

Command kCmd{"logits", "Save the logits of every position of a token sequence", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("model_dir", o->model_dir, "Hugging Face model directory")->required();
  app.add_option("--ids", o->ids, "Comma-separated token ids, e.g. 1,2,3")->required();
  app.add_option("--out", o->out, "Output .safetensors file (tensor 'logits' [T, n_vocab])")
      ->required();
  app.add_option("-t,--threads", o->threads, "Worker threads (default: all cores)");
  app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  return std::function<int()>([o] { return run(*o); });
}};

}  // namespace
}  // namespace qllm::cli
