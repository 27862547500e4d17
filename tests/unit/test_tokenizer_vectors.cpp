// llama.cpp's published tokenizer test vectors (ggml-vocab-*.gguf.inp/.out) against the real
// GPT-2 and Qwen2 tokenizers: exact ids, and exact text back from decode.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "format/tokenizer.h"
#include "format/utf8.h"
#include "testing.h"

using namespace qllm;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    out.push_back(s.substr(pos, hit - pos));
  out.push_back(s.substr(pos));
  return out;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// Each text in .inp ends with "\n__ggml_vocab_test__\n"; .out has one line of ids per text.
// Both split into 47 entries: 46 texts plus the empty remainder after the last separator,
// which must encode to the empty line that ends .out.
std::vector<Case> load_vectors(const std::string& name) {
  auto dir = test::data_dir() / "tokenizer-tests";
  auto texts = split(slurp(dir / ("ggml-vocab-" + name + ".gguf.inp")), "\n__ggml_vocab_test__\n");
  auto lines = split(slurp(dir / ("ggml-vocab-" + name + ".gguf.out")), "\n");
  EXPECT_EQ(texts.size(), 47u);
  EXPECT_EQ(lines.size(), texts.size());
  std::vector<Case> cases;
  for (std::size_t i = 0; i < texts.size() && i < lines.size(); ++i) {
    Case c{texts[i], {}};
    std::istringstream in(lines[i]);
    for (int32_t id; in >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

void check_vectors(const Tokenizer& tok, const std::string& name) {
  auto cases = load_vectors(name);
  ASSERT_EQ(cases.size(), 47u);
  int matched = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto ids = tok.encode(c.text, /*add_special=*/true);  // neither tokenizer adds BOS
    EXPECT_EQ(ids, c.ids) << name << " case " << i << ": '" << c.text << "'";
    matched += ids == c.ids;
    EXPECT_EQ(tok.decode(ids), c.text) << name << " case " << i;
  }
  EXPECT_EQ(matched, 47);
}

const Tokenizer& gpt2() {
  static Tokenizer t = Tokenizer::load(test::data_dir() / "tokenizers" / "gpt2");
  return t;
}
const Tokenizer& qwen2() {
  static Tokenizer t = Tokenizer::load(test::data_dir() / "tokenizers" / "qwen2");
  return t;
}

}  // namespace

TEST(TokenizerVectors, Gpt2) {
  check_vectors(gpt2(), "gpt-2");
}

TEST(TokenizerVectors, Qwen2) {
  check_vectors(qwen2(), "qwen2");
}

TEST(TokenizerVectors, Gpt2FromVocabAndMerges) {
  auto dir = test::temp_dir("tok-fallback");
  for (const char* f : {"vocab.json", "merges.txt"})
    fs::copy_file(test::data_dir() / "tokenizers" / "gpt2" / f, dir / f);
  Tokenizer tok = Tokenizer::load(dir);
  EXPECT_EQ(tok.n_vocab(), gpt2().n_vocab());
  EXPECT_EQ(tok.token_id("<|endoftext|>"), gpt2().token_id("<|endoftext|>"));
  check_vectors(tok, "gpt-2");
  fs::remove_all(dir);
}

TEST(TokenizerVectors, VocabSizes) {
  // GPT-2: 50257 tokens; Qwen2: 151643 BPE tokens + 3 added (tokenizer.json).
  EXPECT_EQ(gpt2().n_vocab(), 50257);
  EXPECT_EQ(qwen2().n_vocab(), 151646);
  EXPECT_EQ(qwen2().token_id("<|im_end|>"), 151645);
  EXPECT_EQ(qwen2().eos_id(), 151645);
  EXPECT_FALSE(qwen2().bos_id().has_value());
  EXPECT_EQ(gpt2().bos_id(), 50256);
}

TEST(TokenizerVectors, AddedTokensSplitBeforeRegex) {
  // Special tokens are cut out whole even when glued to text.
  auto ids = qwen2().encode("<|im_start|>user<|im_end|><|endoftext|>");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 151644);
  EXPECT_EQ(ids[1], *qwen2().token_id("user"));
  EXPECT_EQ(ids[2], 151645);
  EXPECT_EQ(ids[3], 151643);
  EXPECT_EQ(qwen2().decode(ids, /*skip_special=*/true), "user");
}

TEST(TokenizerVectors, NfcNormalizer) {
  // Qwen2 normalizes to NFC: a decomposed "é" (e + U+0301) encodes like the composed one.
  EXPECT_EQ(qwen2().encode("caf\x65\xCC\x81"), qwen2().encode("caf\xC3\xA9"));
  // Hangul jamo compose into a syllable.
  EXPECT_EQ(qwen2().encode("\xE1\x84\x80\xE1\x85\xA1"), qwen2().encode("\xEA\xB0\x80"));
  // GPT-2 has no normalizer: the decomposed form stays different.
  EXPECT_NE(gpt2().encode("caf\x65\xCC\x81"), gpt2().encode("caf\xC3\xA9"));
}

TEST(TokenizerVectors, StreamDecoderHoldsPartialCharacters) {
  const std::string text = "Äpfel 🦙 ＡＢＣ 你好 ∀x∈ℝ 😀😀";
  auto ids = qwen2().encode(text);
  // The case is only meaningful if some token ends inside a character.
  bool split_char = false;
  for (int32_t id : ids) split_char |= !utf8::is_valid(qwen2().decode_bytes({&id, 1}));
  ASSERT_TRUE(split_char);
  StreamDecoder sd(qwen2());
  std::string out;
  for (int32_t id : ids) {
    std::string piece = sd.push(id);
    EXPECT_TRUE(utf8::is_valid(piece));
    out += piece;
  }
  out += sd.flush();
  EXPECT_EQ(out, text);
}

TEST(TokenizerVectors, LongInputs) {
  // Long words and long whitespace runs go through the heap merge without the cache.
  std::string text(5000, 'a');
  text += std::string(3000, ' ') + "end";
  EXPECT_EQ(gpt2().decode(gpt2().encode(text)), text);
  EXPECT_EQ(qwen2().decode(qwen2().encode(text)), text);
}
