// Tokenizer: Hugging Face `tokenizer.json` (BPE models), natively.
//
// Encoding follows the tokenizers library's pipeline, driven by what the file says:
//   1. added tokens (`added_tokens`) are cut out of the raw text first, longest match first;
//   2. each remaining segment goes through the normalizer (NFC, Prepend, Replace, ...);
//   3. the pre-tokenizer splits it into words (Split with a regex, ByteLevel, Metaspace, ...);
//   4. the BPE model turns each word into ids by applying merges in rank order, with
//      byte fallback (<0xNN> tokens) where the vocabulary says so;
//   5. the post-processor adds BOS/EOS (TemplateProcessing), unless tokenizer_config.json's
//      add_bos_token / add_eos_token say otherwise.
// Decoding runs the file's decoder chain (ByteLevel, Replace, ByteFallback, Fuse, Strip, ...).
// Without tokenizer.json, vocab.json + merges.txt are read as a GPT-2 byte-level BPE.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qllm {

struct TokenizerData;  // tokenizer_impl.h

class Tokenizer {
 public:
  // Loads <model_dir>/tokenizer.json (+ tokenizer_config.json for add_bos_token, chat_template
  // and special tokens); falls back to vocab.json + merges.txt when tokenizer.json is absent.
  // Throws FormatError naming the file on malformed input.
  static Tokenizer load(const std::filesystem::path& model_dir);

  // add_special: add BOS/EOS as the tokenizer's configuration says (Llama: BOS; GPT-2, Qwen2:
  // nothing).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Throws FormatError for ids outside [0, n_vocab).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t n_vocab() const;  // including added tokens
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> token_id(std::string_view token) const;  // e.g. "<|im_end|>"
  // The token as stored in the vocabulary (byte-level tokens in their printable alphabet).
  // Empty for ids that name no token; throws FormatError for ids outside [0, n_vocab).
  std::string_view token_text(int32_t id) const;
  bool is_special(int32_t id) const;

  // True if tokenizer_config.json has a chat template that qllm can render (ChatML family).
  bool has_chat_template() const;
  // Renders {role, content} messages with the model's chat template, with the generation prompt.
  // Throws FormatError if there is no template or it is not one qllm can render.
  std::string apply_chat_template(
      const std::vector<std::pair<std::string, std::string>>& role_content) const;

  // Decodes without the final UTF-8 clean-up: token bytes exactly as the decoder chain yields
  // them, possibly ending inside a character. Used by StreamDecoder.
  std::string decode_bytes(std::span<const int32_t> ids, bool skip_special = false) const;

  const std::filesystem::path& path() const;  // the file the vocabulary came from

 private:
  explicit Tokenizer(std::shared_ptr<const TokenizerData> d) : d_(std::move(d)) {}
  std::shared_ptr<const TokenizerData> d_;  // immutable after load, so copies are cheap
};

// Streaming decode: feed ids one by one, get back only complete UTF-8 text. A character split
// across tokens is held back until its last byte arrives.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false)
      : tok_(&tok), skip_special_(skip_special) {}
  std::string push(int32_t id);
  // Returns what is still held back (incomplete bytes become U+FFFD) and starts over.
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  // Decoding is not always token-local (Strip removes the first token's leading space), so
  // each step decodes a short window and prints what grew past `printed_`, the window's text
  // already returned.
  std::vector<int32_t> window_;
  std::string printed_;
};

}  // namespace qllm
