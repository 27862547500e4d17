// `qllm perplexity` end to end on stories260K: the reference perplexity of its README protocol
// (reference.json, computed by an independent fp64 forward), zero divergence of a model from
// itself, the chunks method against a direct computation from `qllm logits`, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "format/safetensors.h"
#include "format/tokenizer.h"
#include "testing.h"

using namespace qllm;
using nlohmann::json;
using test::data_dir;

namespace {

// reference.json gives the perplexity to 4 decimals; the brief's acceptance window.
constexpr double kRefPplTol = 1e-3;
// Two runs of the same forward pass; only the f64 summation order differs.
constexpr double kSameForwardTol = 1e-9;

std::filesystem::path stories() { return data_dir() / "models" / "stories260K"; }
std::filesystem::path excerpt() { return data_dir() / "text" / "TinyStories-valid-excerpt.txt"; }

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

json run_json(const std::string& args) {
  auto r = test::run_qllm("perplexity " + args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? json::parse(r.out) : json::object();
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

// One line "error: ..." on stderr and exit status 2.
void expect_format_error(const test::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

}  // namespace

TEST(PerplexityE2E, StoriesLinesReproducesReference) {
  const json ref = json::parse(slurp(stories() / "reference.json"))["perplexity_tinystories_excerpt"];
  const json j = run_json(q(stories()) + " --text " + q(excerpt()) + " --method lines");
  ASSERT_FALSE(j.empty());
  EXPECT_EQ(j["method"], "lines");
  EXPECT_EQ(j["n_windows"].get<int64_t>(), ref["sequences"].get<int64_t>());
  EXPECT_EQ(j["n_scored"].get<int64_t>(), ref["tokens_scored"].get<int64_t>());
  EXPECT_NEAR(j["ppl"].get<double>(), ref["ppl"].get<double>(), kRefPplTol);
  EXPECT_NEAR(j["mean_nll"].get<double>(), ref["mean_nll"].get<double>(), 1e-5);
}

TEST(PerplexityE2E, ModelAgainstItselfHasZeroKl) {
  const json j = run_json(q(stories()) + " --text " + q(excerpt()) + " --ctx 128 --chunks 6 --base " +
                          q(stories()));
  ASSERT_FALSE(j.empty());
  EXPECT_EQ(j["kl"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(j["kl"]["max"].get<double>(), 0.0);
  EXPECT_EQ(j["top1_agree_pct"].get<double>(), 100.0);
  EXPECT_EQ(j["delta_ppl"].get<double>(), 0.0);
  EXPECT_EQ(j["n_scored"].get<int64_t>(), 6 * (128 - 1 - 64));
}

// llama.cpp's rule computed here from raw logits: tokenize the whole text with BOS, cut chunks
// of ctx, put BOS first, score logits rows ctx/2 .. ctx-2 against the next token.
TEST(PerplexityE2E, ChunksAgreeWithLogitsCommand) {
  const int64_t ctx = 64, n_chunks = 3;
  auto dir = test::temp_dir("ppl-chunks");
  std::string text = slurp(excerpt()).substr(0, 3000);
  write(dir / "small.txt", text);
  const json j = run_json(q(stories()) + " --text " + q(dir / "small.txt") +
                          " --ctx 64 --chunks 3 --method chunks");
  ASSERT_FALSE(j.empty());

  std::string norm;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] != '\r') norm.push_back(text[i]);
    else if (i + 1 >= text.size() || text[i + 1] != '\n') norm.push_back('\n');
  const Tokenizer tok = Tokenizer::load(stories());
  const std::vector<int32_t> ids = tok.encode(norm, true);
  ASSERT_GE(static_cast<int64_t>(ids.size()), n_chunks * ctx);
  double sum = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(ids.begin() + c * ctx, ids.begin() + (c + 1) * ctx);
    chunk[0] = *tok.bos_id();
    std::string list;
    for (int32_t id : chunk) list += (list.empty() ? "" : ",") + std::to_string(id);
    const auto out = dir / ("logits" + std::to_string(c) + ".safetensors");
    auto r = test::run_qllm("logits " + q(stories()) + " --ids " + list + " --out " + q(out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const TensorSet ts = TensorSet::open(out);
    const std::vector<float> logits = ts.get("logits").to_f32();
    const int64_t n_vocab = ts.get("logits").shape()[1];
    for (int64_t p = ctx / 2; p < ctx - 1; ++p) {
      const float* row = logits.data() + p * n_vocab;
      double m = row[0];
      for (int64_t v = 1; v < n_vocab; ++v) m = std::max(m, double(row[v]));
      double s = 0;
      for (int64_t v = 0; v < n_vocab; ++v) s += std::exp(double(row[v]) - m);
      sum += m + std::log(s) - double(row[chunk[p + 1]]);
      ++count;
    }
  }
  EXPECT_EQ(j["n_scored"].get<int64_t>(), count);
  EXPECT_NEAR(j["mean_nll"].get<double>(), sum / double(count), kSameForwardTol);
}

TEST(PerplexityE2E, BadInputIsOneLineError) {
  auto dir = test::temp_dir("ppl-bad");
  write(dir / "empty.txt", "  \r\n\n");
  write(dir / "short.txt", "Once upon a time.");
  const std::string m = q(stories());
  expect_format_error(test::run_qllm("perplexity " + m + " --text " + q(dir / "empty.txt")), "empty");
  expect_format_error(test::run_qllm("perplexity " + m + " --text " + q(dir / "short.txt")),
                      "too short");
  expect_format_error(test::run_qllm("perplexity " + m + " --text " + q(dir / "missing.txt")),
                      "cannot open");
  expect_format_error(test::run_qllm("perplexity " + m + " --text " + q(excerpt()) + " --ctx 1024"),
                      "exceeds the model's context");
  expect_format_error(test::run_qllm("perplexity " + m + " --text " + q(excerpt()) + " --method zip"),
                      "unknown --method");

  // A base model with another vocabulary: stories260K's config with vocab_size 1000.
  json cfg = json::parse(slurp(stories() / "config.json"));
  cfg["vocab_size"] = 1000;
  write(dir / "config.json", cfg.dump(2));
  auto r = test::run_qllm("random-init " + q(dir / "config.json") + " " + q(dir / "other"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_format_error(test::run_qllm("perplexity " + m + " --text " + q(excerpt()) +
                                     " --ctx 64 --chunks 1 --base " + q(dir / "other")),
                      "vocabulary");
}
