// Tokenizer: stories260K (SentencePiece-style BPE with byte fallback) against llama2.c's
// encodings, Qwen2's chat template against transformers' apply_chat_template, streaming
// decode, bad input, and the `qllm tokenize` command.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "format/tokenizer.h"
#include "format/utf8.h"
#include "testing.h"
#include "util/error.h"

using namespace qllm;
namespace fs = std::filesystem;

namespace {

fs::path stories_dir() {
  return test::data_dir() / "models" / "stories260K";
}
fs::path qwen2_dir() {
  return test::data_dir() / "tokenizers" / "qwen2";
}

const Tokenizer& stories() {
  static Tokenizer t = Tokenizer::load(stories_dir());
  return t;
}
const Tokenizer& qwen2() {
  static Tokenizer t = Tokenizer::load(qwen2_dir());
  return t;
}

nlohmann::json reference() {
  std::ifstream f(stories_dir() / "reference.json");
  return nlohmann::json::parse(f);
}

// From the shared data's README: transformers' apply_chat_template for one user message
// "Hello, who are you?" with add_generation_prompt=True, tokenized.
const std::vector<int32_t> kQwen2ChatIds = {
    151644, 8948, 198, 2610, 525, 264, 10950, 17847,  13,  151645, 198,   151644, 872,
    198,    9707, 11,  879,  525, 498, 30,    151645, 198, 151644, 77091, 198};

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

// A model directory whose tokenizer.json is `json`.
fs::path dir_with(const std::string& tag, const std::string& json) {
  auto dir = test::temp_dir(tag);
  write(dir / "tokenizer.json", json);
  return dir;
}

}  // namespace

TEST(Tokenizer, Stories260KMatchesLlama2c) {
  auto cases = reference()["encode_llama2c"]["cases"];
  ASSERT_EQ(cases.size(), 5u);
  for (auto it = cases.begin(); it != cases.end(); ++it) {
    auto want = it.value().get<std::vector<int32_t>>();
    auto ids = stories().encode(it.key());  // BOS included, as add_bos_token says
    EXPECT_EQ(ids, want) << it.key();
    EXPECT_EQ(stories().decode(ids, /*skip_special=*/true), it.key());
    EXPECT_EQ(stories().decode(stories().encode(it.key(), false)), it.key());
  }
}

TEST(Tokenizer, Stories260KGreedyTextDecodes) {
  // The reference's greedy continuation decodes to its published text.
  auto g = reference()["greedy_from_BOS"];
  ASSERT_TRUE(g.contains("text"));
  auto ids = g["tokens"].get<std::vector<int32_t>>();
  std::string text = stories().decode(ids);
  std::string want = g["text"].get<std::string>();
  EXPECT_EQ(text, want);
}

TEST(Tokenizer, Stories260KSpecials) {
  EXPECT_EQ(stories().n_vocab(), 512);
  EXPECT_EQ(stories().bos_id(), 1);
  EXPECT_EQ(stories().eos_id(), 2);
  EXPECT_EQ(stories().token_id("<0x0A>"), 13);
  EXPECT_EQ(stories().token_text(1), "<s>");
  // "<s>" in the text is the BOS token itself, not characters.
  auto ids = stories().encode("<s>Once", false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_FALSE(stories().has_chat_template());
  EXPECT_THROW(stories().apply_chat_template({{"user", "hi"}}), FormatError);
}

TEST(Tokenizer, StreamDecoderByteFallback) {
  // "☃" is not in stories260K's vocabulary: three <0xNN> tokens, printed only once complete.
  const std::string text = "Lily saw a \xE2\x98\x83 and \xF0\x9F\x98\x80!";
  auto ids = stories().encode(text);
  StreamDecoder sd(stories(), /*skip_special=*/true);
  std::string out;
  int held = 0;
  for (int32_t id : ids) {
    std::string piece = sd.push(id);
    EXPECT_TRUE(utf8::is_valid(piece));
    held += piece.empty();
    out += piece;
  }
  out += sd.flush();
  EXPECT_EQ(out, text);
  EXPECT_GE(held, 2 + 3);  // at least the first bytes of ☃ and 😀 were held back (BOS too)
}

TEST(Tokenizer, Qwen2ChatTemplate) {
  ASSERT_TRUE(qwen2().has_chat_template());
  std::string text = qwen2().apply_chat_template({{"user", "Hello, who are you?"}});
  EXPECT_EQ(qwen2().encode(text), kQwen2ChatIds);
  EXPECT_EQ(qwen2().decode(kQwen2ChatIds), text);
  // An explicit system message replaces the template's default one.
  std::string custom =
      qwen2().apply_chat_template({{"system", "S"}, {"user", "Hello, who are you?"}});
  EXPECT_EQ(custom.find("You are a helpful assistant."), std::string::npos);
  EXPECT_NE(custom.find("<|im_start|>system\nS<|im_end|>\n"), std::string::npos);
}

TEST(Tokenizer, UnsupportedChatTemplate) {
  auto dir = test::temp_dir("tok-template");
  for (const char* f : {"tokenizer.json"}) fs::copy_file(stories_dir() / f, dir / f);
  write(
      dir / "tokenizer_config.json",
      R"({"chat_template": "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"})");
  Tokenizer tok = Tokenizer::load(dir);
  EXPECT_FALSE(tok.has_chat_template());
  try {
    tok.apply_chat_template({{"user", "hi"}});
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "tokenizer_config.json").string() +
                  ": chat template is not one qllm can render (supported: ChatML)");
  }
  fs::remove_all(dir);
}

TEST(Tokenizer, MalformedTokenizerJsonIsFormatError) {
  const std::pair<const char*, const char*> bad[] = {
      {"not json", "{\"model\": "},
      {"not an object", "[1, 2]"},
      {"no model", R"({"added_tokens": []})"},
      {"unknown model", R"({"model": {"type": "Unigram", "vocab": []}})"},
      {"vocab not an object", R"({"model": {"type": "BPE", "vocab": [1], "merges": []}})"},
      {"negative id", R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})"},
      {"merge of unknown token",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})"},
      {"bad regex",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("}, "behavior": "Isolated"}})"},
      {"unknown decoder",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "Nope"}})"},
      {"added token without id",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"content": "x"}]})"},
  };
  for (const auto& [what, json] : bad) {
    auto dir = dir_with("tok-bad", json);
    try {
      Tokenizer::load(dir);
      ADD_FAILURE() << what << ": no error";
    } catch (const FormatError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << what << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
    }
    fs::remove_all(dir);
  }
  EXPECT_THROW(Tokenizer::load(test::temp_dir("tok-empty")), FormatError);
}

TEST(Tokenizer, BadVocabAndMergeEntriesAreNamed) {
  const std::string vocab = R"("vocab": {"a": 0, "b": 1, "ab": 2})";
  const std::pair<std::string, std::string> bad[] = {
      {R"("vocab": {"a": 0, "a": 1}, "merges": [])", "vocab: duplicate token 'a'"},
      {R"("vocab": {"a": "0"}, "merges": [])", "vocab entry 'a': id must be an integer"},
      {R"("vocab": {"a": {"x": [1]}, "b": 1}, "merges": [])",
       "vocab entry 'a': id must be an integer"},
      {R"("vocab": {"a": 16777216}, "merges": [])", "vocab entry 'a': id 16777216 out of range"},
      {R"("merges": [])", "model: missing 'vocab'"},
      {R"("vocab": [], "merges": [])", "model vocab: expected an object, got array"},
      {vocab, "model: 'merges' must be an array"},
      {vocab + R"(, "merges": {})", "model: 'merges' must be an array"},
      {vocab + R"(, "merges": ["a b", "ab"])", "merge 1 ('ab') is not 'a b'"},
      {vocab + R"(, "merges": [["a", "b", "ab"]])", "merge 0 is neither 'a b' nor [a, b]"},
      {vocab + R"(, "merges": [["a", "b"], ["a", ["b"]]])", "merge 1 is neither 'a b' nor [a, b]"},
      {vocab + R"(, "merges": [["a", "b"], 3])", "merge 1 is neither 'a b' nor [a, b]"},
      {vocab + R"(, "merges": [{"a": "b"}])", "merge 0 is neither 'a b' nor [a, b]"},
      {vocab + R"(, "merges": [["a", "b"], ["b", "a"]])",
       "merge 1 ('b a') uses a token that is not in the vocabulary"},
  };
  for (const auto& [model, want] : bad) {
    auto dir = dir_with("tok-entries", R"({"model": {"type": "BPE", )" + model + "}}");
    try {
      Tokenizer::load(dir);
      ADD_FAILURE() << model << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << model << ": " << e.what();
    }
    fs::remove_all(dir);
  }
}

TEST(Tokenizer, MergesAsStringsAndKeysInAnyOrderLoadAlike) {
  // tokenizers writes merges as "a b" strings or, since 0.20, as [a, b] pairs, and a JSON
  // object's keys may come in any order. stories260K with its merges rewritten as strings and
  // its keys sorted (merges now before vocab) must still match llama2.c.
  std::ifstream f(stories_dir() / "tokenizer.json");
  auto j = nlohmann::json::parse(f);
  auto& merges = j["model"]["merges"];
  ASSERT_TRUE(merges.is_array() && !merges.empty() && merges[0].is_array());
  for (auto& m : merges) {
    auto a = m[0].get<std::string>(), b = m[1].get<std::string>();
    ASSERT_EQ((a + b).find(' '), std::string::npos);
    m = a + " " + b;
  }
  auto dir = dir_with("tok-merge-strings", j.dump());  // nlohmann writes keys sorted
  fs::copy_file(stories_dir() / "tokenizer_config.json", dir / "tokenizer_config.json");
  ASSERT_LT(j.dump().find("\"merges\""), j.dump().find("\"vocab\""));
  Tokenizer tok = Tokenizer::load(dir);
  auto cases = reference()["encode_llama2c"]["cases"];
  ASSERT_EQ(cases.size(), 5u);
  for (auto it = cases.begin(); it != cases.end(); ++it)
    EXPECT_EQ(tok.encode(it.key()), it.value().get<std::vector<int32_t>>()) << it.key();
  fs::remove_all(dir);
}

TEST(Tokenizer, DecodeRejectsIdsOutsideVocab) {
  std::vector<int32_t> ids = {1, 512};
  EXPECT_THROW(stories().decode(ids), FormatError);
  ids = {-1};
  EXPECT_THROW(stories().decode(ids), FormatError);
  EXPECT_THROW(stories().token_text(512), FormatError);
}

TEST(Tokenizer, IncompleteByteFallbackRunDecodesToReplacementPerByte) {
  // tokenizers' ByteFallback decoder: a run of <0xNN> tokens that is not valid UTF-8 gives one
  // U+FFFD per byte. 229, 155 are <0xE2>, <0x98>: the first two bytes of "☃".
  std::vector<int32_t> ids = {229, 155};
  EXPECT_EQ(stories().decode(ids), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Tokenizer, InvalidUtf8InputDoesNotCrash) {
  auto ids = qwen2().encode("a\xFF\xC3(b");
  EXPECT_TRUE(utf8::is_valid(qwen2().decode(ids)));
}

TEST(TokenizeCommand, EncodesAndDecodes) {
  auto dir = stories_dir().string();
  auto r = test::run_qllm("tokenize '" + dir + "' --text 'Once upon a time' --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1,403,407,261,378]\n");
  r = test::run_qllm("tokenize '" + dir + "' --text 'Once upon a time' --no-special");
  EXPECT_EQ(r.out, "403 407 261 378\n");
  r = test::run_qllm("tokenize '" + dir + "' --decode 403,407,261,378");
  EXPECT_EQ(r.out, "Once upon a time\n");
  r = test::run_qllm("tokenize '" + qwen2_dir().string() +
                     "' --text 'Hello, who are you?' --chat --json");
  EXPECT_EQ(r.out, nlohmann::json(kQwen2ChatIds).dump() + "\n");
}

TEST(TokenizeCommand, BadInputIsOneLineError) {
  auto dir = stories_dir().string();
  for (const char* args : {" --decode 1,99999", " --decode 1,x", " --text a --decode 1"}) {
    auto r = test::run_qllm("tokenize '" + dir + "'" + args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
}
