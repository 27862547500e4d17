// qllm compare: a quantized model against its base, on one prompt.
//
// Both models decode greedily from the prompt (shown side by side). On the prompt, the max and
// mean |logit difference| over all positions and the vocabulary. Then both are teacher-forced on
// prompt + the base's greedy continuation, and "greedy agreement" is the share of continuation
// positions where the quantized model's argmax is the base's token (one quantization slip does
// not derail the rest of the count, unlike comparing free-running generations). Memory
// footprints are the bytes of all stored tensors.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "token_ids.h"
#include "util/error.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string base, quant;
  std::optional<std::string> prompt, ids;
  int64_t max_new_tokens = 32;
  bool json = false;
};

uint64_t footprint(const Model& m) {
  uint64_t b = 0;
  for (const auto& t : m.tensors().all()) b += t.bytes.size();
  return b;
}

std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids) {
  Session s(m, static_cast<int64_t>(ids.size()));
  const float* l = s.forward(ids, true);
  return {l, l + ids.size() * static_cast<std::size_t>(m.config().n_vocab)};
}

int32_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return static_cast<int32_t>(best);
}

std::string text_of(const Model& m, const std::vector<int32_t>& ids) {
  try {
    return m.tokenizer().decode(ids, true);
  } catch (const FormatError&) {
    std::string s;
    for (auto id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
  }
}

Command kCmd{"compare", "Compare a quantized model with its base model on a prompt", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("base", o->base, "Base (float) model directory")->required();
  app.add_option("quantized", o->quant, "Quantized model directory")->required();
  app.add_option("-p,--prompt", o->prompt, "Prompt text (base model's tokenizer)");
  app.add_option("--ids", o->ids, "Prompt as comma-separated token ids");
  app.add_option("-n,--max-new-tokens", o->max_new_tokens, "Greedy tokens to generate (default 32)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", o->json, "Print the results as JSON");
  return std::function<int()>([o] {
    if (o->prompt && o->ids) fail_usage("give --prompt or --ids, not both");
    auto base = Model::load(o->base);
    auto quant = Model::load(o->quant);
    const int64_t n_vocab = base->config().n_vocab;
    if (quant->config().n_vocab != n_vocab)
      fail(o->quant, "vocabulary of {} tokens, the base model has {}", quant->config().n_vocab, n_vocab);
    std::vector<int32_t> prompt;
    if (o->ids) prompt = parse_token_ids("--ids", *o->ids);
    else if (o->prompt) prompt = base->tokenizer().encode(*o->prompt, true);
    else if (base->config().bos_id) prompt = {*base->config().bos_id};
    else fail_usage("the model has no BOS token; give --prompt or --ids");
    if (prompt.empty()) fail_usage("the prompt has no tokens");
    for (int32_t id : prompt)
      if (id >= n_vocab) fail_usage("token id {} is outside the vocabulary (n_vocab = {})", id, n_vocab);
    const int64_t n_ctx = std::min(base->config().n_ctx, quant->config().n_ctx);
    if (static_cast<int64_t>(prompt.size()) >= n_ctx)
      fail_usage("the prompt has {} tokens; the context holds {}", prompt.size(), n_ctx);
    const int64_t n_new = std::min<int64_t>(o->max_new_tokens, n_ctx - static_cast<int64_t>(prompt.size()));

    GenerateOptions g;
    g.max_new_tokens = n_new;  // no stop ids: both run the same length
    Session sb(*base, static_cast<int64_t>(prompt.size()) + n_new);
    Session sq(*quant, static_cast<int64_t>(prompt.size()) + n_new);
    const std::vector<int32_t> gen_b = generate(sb, prompt, g).ids;
    const std::vector<int32_t> gen_q = generate(sq, prompt, g).ids;

    // Logit differences on the prompt.
    const auto lb = all_logits(*base, prompt), lq = all_logits(*quant, prompt);
    double max_d = 0, sum_d = 0;
    for (std::size_t i = 0; i < lb.size(); ++i) {
      const double d = std::fabs(static_cast<double>(lb[i]) - lq[i]);
      max_d = std::max(max_d, d);
      sum_d += d;
    }
    // Teacher-forced greedy agreement on the base continuation.
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), gen_b.begin(), gen_b.end());
    seq.pop_back();  // the last token's prediction is not needed
    const auto tb = all_logits(*base, seq), tq = all_logits(*quant, seq);
    int64_t agree = 0;
    const std::size_t first = prompt.size() - 1;
    for (std::size_t p = first; p < seq.size(); ++p)
      agree += argmax(&tq[p * n_vocab], n_vocab) == argmax(&tb[p * n_vocab], n_vocab);
    const int64_t positions = static_cast<int64_t>(seq.size() - first);
    const double agreement = 100.0 * static_cast<double>(agree) / static_cast<double>(positions);
    int64_t same_prefix = 0;
    while (same_prefix < n_new && gen_b[same_prefix] == gen_q[same_prefix]) ++same_prefix;

    if (o->json) {
      nlohmann::ordered_json j = {{"prompt_ids", prompt},
                                  {"base_ids", gen_b},
                                  {"quantized_ids", gen_q},
                                  {"base_text", text_of(*base, gen_b)},
                                  {"quantized_text", text_of(*quant, gen_q)},
                                  {"identical_prefix_tokens", same_prefix},
                                  {"max_logit_diff", max_d},
                                  {"mean_logit_diff", sum_d / static_cast<double>(lb.size())},
                                  {"greedy_agreement_percent", agreement},
                                  {"greedy_agreement_positions", positions},
                                  {"footprint_base", footprint(*base)},
                                  {"footprint_quantized", footprint(*quant)}};
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("prompt: %zu tokens, %lld new tokens (greedy)\n\n", prompt.size(), static_cast<long long>(n_new));
    std::printf("--- base (%s)\n%s\n\n", o->base.c_str(), text_of(*base, gen_b).c_str());
    std::printf("--- quantized (%s)\n%s\n\n", o->quant.c_str(), text_of(*quant, gen_q).c_str());
    std::printf("identical generated prefix:  %lld of %lld tokens\n", static_cast<long long>(same_prefix),
                static_cast<long long>(n_new));
    std::printf("logits on the prompt:        max |diff| %.4g, mean |diff| %.4g\n", max_d,
                sum_d / static_cast<double>(lb.size()));
    std::printf("greedy agreement (teacher-forced on the base continuation): %.1f%% (%lld of %lld)\n",
                agreement, static_cast<long long>(agree), static_cast<long long>(positions));
    std::printf("memory footprint:            %.2f MiB base, %.2f MiB quantized\n",
                static_cast<double>(footprint(*base)) / 1048576.0, static_cast<double>(footprint(*quant)) / 1048576.0);
    return 0;
  });
}};

}  // namespace
}  // namespace qllm::cli
