// generate() on a CudaSession: the loop of runtime/generate.cpp, with greedy decoding kept on
// the GPU.
#include <algorithm>
#include <chrono>

#include "runtime/cuda/cuda_session.h"
#include "util/error.h"

namespace qllm::cuda {

GenerateResult generate(CudaSession& s, std::span<const int32_t> prompt, const GenerateOptions& opts,
                        const std::function<void(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  const int64_t n_vocab = s.model().config().n_vocab;
  if (prompt.empty()) fail_usage("the prompt has no tokens");
  if (static_cast<int64_t>(prompt.size()) > s.n_ctx())
    fail_usage("the prompt has {} tokens, more than the context of {}", prompt.size(), s.n_ctx());
  const bool greedy = opts.sampler.temperature <= 0.0f && opts.sampler.repetition_penalty == 1.0f;
  GenerateResult r;
  Sampler sampler(opts.sampler, n_vocab);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> logits(static_cast<std::size_t>(n_vocab));
  auto next = [&](std::span<const int32_t> ids) {
    if (greedy) return s.forward_greedy(ids);
    const float* out = s.forward(ids, false);
    std::copy(out, out + n_vocab, logits.begin());
    return sampler.sample(logits, history);
  };

  s.reset();
  auto t0 = Clock::now();
  int32_t id = opts.max_new_tokens > 0 ? next(prompt) : (s.forward_greedy(prompt), 0);
  auto t1 = Clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
  for (int64_t i = 0; i < opts.max_new_tokens; ++i) {
    r.ids.push_back(id);
    history.push_back(id);
    if (on_token) on_token(id);
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), id) != opts.stop_ids.end()) {
      r.stopped = true;
      break;
    }
    if (i + 1 == opts.max_new_tokens || s.pos() >= s.n_ctx()) break;
    id = next({&id, 1});
    ++r.decode_steps;
  }
  r.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return r;
}

}  // namespace qllm::cuda
