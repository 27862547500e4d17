// Internals of Tokenizer: the pipeline stages read from tokenizer.json, and the functions that
// run them. Nothing here is public API; see tokenizer.h for the overall flow.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/bpe_tables.h"
#include "format/tokenizer_regex.h"

namespace qllm {

// One entry of `added_tokens`: matched in the raw text before anything else runs.
struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;      // skipped by decode(skip_special=true)
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matches when not inside a word
};

struct Normalizer {
  enum class Kind { Nfc, Prepend, Replace, Lowercase, Strip };
  Kind kind;
  std::string a, b;                   // Prepend: a; Replace: a -> b (when not a regex)
  std::shared_ptr<TokenRegex> regex;  // Replace with a Regex pattern
  bool left = false, right = false;   // Strip
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
enum class PrependScheme { Always, First, Never };

struct PreTokenizer {
  enum class Kind { Split, ByteLevel, Metaspace, Digits };
  Kind kind;
  // Split
  std::shared_ptr<TokenRegex> regex;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = true;
  // Metaspace
  std::string replacement;
  PrependScheme prepend_scheme = PrependScheme::Always;
  bool split = true;
  // Digits
  bool individual_digits = false;
};

struct DecoderStep {
  enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
  Kind kind;
  std::string a, b;                 // Replace a -> b; Strip/Metaspace: the character (a)
  std::size_t start = 0, stop = 0;  // Strip: how many copies of `a` to cut at each end
  bool prepend = true;              // Metaspace: the encoder prepended `a`, so drop it from token 0
};

// The BPE model: vocabulary plus merges keyed by the ids of the pair.
struct BpeModel {
  Vocab vocab;
  MergeTable merges;
  std::optional<int32_t> unk_id;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;           // a word that is itself in the vocabulary is one token
  std::array<int32_t, 256> byte_ids{};  // ids of <0xNN>, -1 where absent
};

// Words repeat a lot in real text, so their ids are remembered. Bounded; cleared when full.
class BpeCache {
 public:
  bool get(std::string_view word, std::vector<int32_t>& out) const;
  void put(std::string_view word, const std::vector<int32_t>& ids) const;

 private:
  static constexpr std::size_t kMaxEntries = 1 << 16;
  static constexpr std::size_t kMaxWordBytes = 256;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> map_;
};

struct TokenizerData {
  std::filesystem::path dir;
  std::filesystem::path path;         // tokenizer.json, or vocab.json for the fallback
  std::filesystem::path config_path;  // tokenizer_config.json (may not exist)

  BpeModel bpe;
  std::vector<std::string> id_to_token;  // [n_vocab]; empty where no token has that id
  std::vector<uint8_t> special;          // [n_vocab]; 1 for special added tokens
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t> added_ids;
  // For each first byte, indexes into `added`, longest content first.
  std::array<std::vector<uint32_t>, 256> added_by_first{};

  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  std::vector<DecoderStep> decoders;
  bool has_decoder = false;  // without one, tokens are joined with spaces (as HF does)

  std::vector<int32_t> prefix_ids, suffix_ids;  // added around the text by encode(add_special)
  std::optional<int32_t> bos, eos;
  std::string chat_template;

  BpeCache cache;
};

// ---- stages (one file each) ----

// Splits raw text into plain segments and added-token matches.
struct Segment {
  std::string_view text;  // the plain text, empty for a match
  int32_t added_id = -1;  // >= 0 for a matched added token
};
std::vector<Segment> split_added_tokens(const TokenizerData& d, std::string_view text);

// The normalizer chain on one segment. `text` is valid UTF-8.
std::string normalize(const TokenizerData& d, std::string text);
// Canonical composition (Unicode NFC).
std::string nfc(std::string_view text);

// The pre-tokenizer chain: words for the model. `first` is true for the segment at the start of
// the input (Metaspace's prepend_scheme "first").
std::vector<std::string> pre_tokenize(const TokenizerData& d, std::string text, bool first);
// GPT-2's reversible byte -> printable character map, as UTF-8 strings, and its inverse.
const std::array<std::string, 256>& byte_level_chars();
int byte_level_byte(char32_t c);  // -1 if `c` is not in the map
// The pattern GPT-2's ByteLevel pre-tokenizer splits with (use_regex).
const TokenRegex& gpt2_regex();

// BPE of one word, appended to `out`.
void bpe_encode(const TokenizerData& d, std::string_view word, std::vector<int32_t>& out);

// Runs the decoder chain over token strings and concatenates the result. With `raw`, byte
// fallback runs stay bytes even when they are not valid UTF-8 (a streaming decoder may be
// in the middle of a character); without, each byte of an invalid run becomes U+FFFD, as in
// the reference.
std::string run_decoders(const TokenizerData& d, std::vector<std::string> tokens, bool raw);

// Loading (tokenizer_json.cpp).
std::shared_ptr<TokenizerData> load_tokenizer_data(const std::filesystem::path& model_dir);

}  // namespace qllm
