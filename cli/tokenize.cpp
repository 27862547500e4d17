// qllm tokenize: encode text to ids, or decode ids to text, with a model's tokenizer.
//   qllm tokenize MODEL_DIR --text "Hello" [--no-special] [--chat] [--json]
//   qllm tokenize MODEL_DIR --decode 1,2,3 [--no-special] [--json]
#include <charconv>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.h"
#include "token_ids.h"
#include "format/tokenizer.h"
#include "util/error.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string model_dir;
  std::optional<std::string> text, decode;
  bool no_special = false, chat = false, json = false;
};

int run(const Opts& o) {
  if (o.text.has_value() == o.decode.has_value())
    fail_usage("tokenize: give exactly one of --text or --decode");
  Tokenizer tok = Tokenizer::load(o.model_dir);
  if (o.decode) {
    std::string text = tok.decode(parse_token_ids("--decode", *o.decode), o.no_special);
    std::string out = o.json ? nlohmann::json(text).dump() : text;
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::string text = *o.text;
  if (o.chat) text = tok.apply_chat_template({{"user", text}});
  // A chat prompt already carries its special tokens.
  std::vector<int32_t> ids = tok.encode(text, !o.no_special && !o.chat);
  std::string out;
  if (o.json) {
    out = nlohmann::json(ids).dump();
  } else {
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

Command kCmd{
    "tokenize", "Encode text to token ids, or decode ids to text", [](CLI::App& app) {
      auto o = std::make_shared<Opts>();
      app.add_option("model_dir", o->model_dir, "Model directory with tokenizer.json")->required();
      app.add_option("--text", o->text, "Text to encode");
      app.add_option("--decode", o->decode, "Comma-separated ids to decode, e.g. 1,2,3");
      app.add_flag("--no-special", o->no_special,
                   "Encode without BOS/EOS; decode without special tokens");
      app.add_flag("--chat", o->chat,
                   "Encode the text as one user message through the chat template");
      app.add_flag("--json", o->json, "Print a JSON array (or JSON string for --decode)");
      return std::function<int()>([o] { return run(*o); });
    }};

}  // namespace
}  // namespace qllm::cli
