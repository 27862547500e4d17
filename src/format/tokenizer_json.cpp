// Loading a tokenizer from a Hugging Face model directory.
//
// tokenizer.json (written by the `tokenizers` library) is one JSON object:
//   "added_tokens":   [{"id", "content", "special", "lstrip", "rstrip", "single_word",
//                       "normalized"}, ...]
//   "normalizer":     null | {"type": "NFC" | "Prepend" | "Replace" | "Lowercase" | "Strip" |
//                       "Sequence" (with "normalizers": [...]), ...}
//   "pre_tokenizer":  null | {"type": "Split" (pattern {"Regex"|"String"}, behavior, invert) |
//                       "ByteLevel" | "Metaspace" | "Digits" | "Sequence" ("pretokenizers")}
//   "post_processor": null | {"type": "TemplateProcessing" | "ByteLevel" | "RobertaProcessing" |
//                       "BertProcessing" | "Sequence" ("processors")}
//   "decoder":        null | {"type": "ByteLevel" | "Replace" | "ByteFallback" | "Fuse" |
//                       "Strip" | "Metaspace" | "Sequence" ("decoders")}
//   "model":          {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...] or
//                       [["a", "b"], ...], "unk_token", "fuse_unk", "byte_fallback",
//                       "ignore_merges", ...}
// tokenizer_config.json (written by transformers) adds bos_token / eos_token (a string or
// {"content": ...}), add_bos_token / add_eos_token and chat_template.
// Without tokenizer.json, vocab.json ({token: id}) and merges.txt ("#version" line, then one
// "a b" pair per line, highest priority first) describe a GPT-2 byte-level BPE.
//
// Every field is checked before use; anything unexpected is a FormatError naming the file.
// tokenizer.json's model.vocab and model.merges are read past the DOM (tokenizer_json_parse.h)
// and checked here with the same messages.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "format/tokenizer_impl.h"
#include "format/tokenizer_json_parse.h"
#include "util/error.h"

namespace qllm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// tokenizer.json files of real vocabularies are tens of MB; this only stops absurd inputs.
constexpr std::uintmax_t kMaxFileBytes = 1ull << 30;
constexpr int64_t kMaxVocab = 1 << 24;

std::string read_file(const fs::path& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read ({})", ec.message());
  if (size > kMaxFileBytes) fail(path, "file too large ({} bytes, limit {})", size, kMaxFileBytes);
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open");
  std::string s(size, '\0');
  f.read(s.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(f.gcount()) != size) fail(path, "short read");
  return s;
}

json parse_json(const fs::path& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(path, "invalid JSON: {}", e.what());
  }
}

// Small typed accessors: the error names the key and what was expected.
struct Reader {
  const fs::path& path;

  const json& obj(const json& j, std::string_view what) const {
    if (!j.is_object()) fail(path, "{}: expected an object, got {}", what, j.type_name());
    return j;
  }
  std::string str(const json& j, const char* key, std::string_view what) const {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) fail(path, "{}: '{}' must be a string", what, key);
    return it->get<std::string>();
  }
  bool flag(const json& j, const char* key, bool def) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    if (!it->is_boolean()) fail(path, "'{}' must be true or false", key);
    return it->get<bool>();
  }
  const json& array(const json& j, const char* key, std::string_view what) const {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) fail(path, "{}: '{}' must be an array", what, key);
    return *it;
  }
  int32_t id(const json& j, std::string_view what) const {
    if (!j.is_number_integer()) fail(path, "{}: id must be an integer", what);
    auto v = j.get<int64_t>();
    if (v < 0 || v >= kMaxVocab) fail(path, "{}: id {} out of range [0, {})", what, v, kMaxVocab);
    return static_cast<int32_t>(v);
  }
  std::string type(const json& j, std::string_view what) const {
    obj(j, what);
    return str(j, "type", what);
  }
  // A Split/Replace pattern: {"Regex": "..."} or {"String": "..."}.
  std::shared_ptr<TokenRegex> pattern(const json& j, std::string_view what,
                                      std::string* literal) const {
    auto it = j.find("pattern");
    if (it == j.end() || !it->is_object()) fail(path, "{}: 'pattern' must be an object", what);
    if (it->contains("String")) {
      *literal = str(*it, "String", what);
      return nullptr;
    }
    std::string re = str(*it, "Regex", what);
    try {
      return std::make_shared<TokenRegex>(re);
    } catch (const std::invalid_argument& e) {
      fail(path, "{}: regex does not compile: {}", what, e.what());
    }
  }
};

// Escapes a literal so that PCRE2 matches it verbatim.
std::string regex_quote(const std::string& s) {
  return "\\Q" + s + "\\E";
}

void read_normalizer(const Reader& r, const json& j, std::vector<Normalizer>& out) {
  if (j.is_null()) return;
  std::string t = r.type(j, "normalizer");
  if (t == "Sequence") {
    for (const auto& n : r.array(j, "normalizers", "normalizer Sequence"))
      read_normalizer(r, n, out);
  } else if (t == "NFC") {
    out.push_back({Normalizer::Kind::Nfc, {}, {}, nullptr});
  } else if (t == "Prepend") {
    out.push_back(
        {Normalizer::Kind::Prepend, r.str(j, "prepend", "normalizer Prepend"), {}, nullptr});
  } else if (t == "Replace") {
    Normalizer n{Normalizer::Kind::Replace, {}, r.str(j, "content", "normalizer Replace"), nullptr};
    n.regex = r.pattern(j, "normalizer Replace", &n.a);
    if (!n.regex && n.a.empty()) fail(r.path, "normalizer Replace: empty pattern");
    out.push_back(std::move(n));
  } else if (t == "Lowercase") {
    out.push_back({Normalizer::Kind::Lowercase, {}, {}, nullptr});
  } else if (t == "Strip") {
    Normalizer n{Normalizer::Kind::Strip, {}, {}, nullptr};
    n.left = r.flag(j, "strip_left", false);
    n.right = r.flag(j, "strip_right", false);
    out.push_back(std::move(n));
  } else {
    fail(r.path, "normalizer type '{}' is not supported", t);
  }
}

SplitBehavior read_behavior(const Reader& r, const json& j) {
  std::string b = r.str(j, "behavior", "pre_tokenizer Split");
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  fail(r.path, "pre_tokenizer Split: unknown behavior '{}'", b);
}

PrependScheme read_prepend_scheme(const Reader& r, const json& j) {
  auto it = j.find("prepend_scheme");
  if (it == j.end())
    return r.flag(j, "add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
  std::string s = r.str(j, "prepend_scheme", "Metaspace");
  if (s == "always") return PrependScheme::Always;
  if (s == "first") return PrependScheme::First;
  if (s == "never") return PrependScheme::Never;
  fail(r.path, "Metaspace: unknown prepend_scheme '{}'", s);
}

void read_pre_tokenizer(const Reader& r, const json& j, std::vector<PreTokenizer>& out) {
  if (j.is_null()) return;
  std::string t = r.type(j, "pre_tokenizer");
  PreTokenizer p{};
  if (t == "Sequence") {
    for (const auto& n : r.array(j, "pretokenizers", "pre_tokenizer Sequence"))
      read_pre_tokenizer(r, n, out);
    return;
  } else if (t == "Split") {
    p.kind = PreTokenizer::Kind::Split;
    std::string literal;
    p.regex = r.pattern(j, "pre_tokenizer Split", &literal);
    if (!p.regex) p.regex = std::make_shared<TokenRegex>(regex_quote(literal));
    p.behavior = read_behavior(r, j);
    p.invert = r.flag(j, "invert", false);
  } else if (t == "ByteLevel") {
    p.kind = PreTokenizer::Kind::ByteLevel;
    p.add_prefix_space = r.flag(j, "add_prefix_space", true);
    p.use_regex = r.flag(j, "use_regex", true);
  } else if (t == "Metaspace") {
    p.kind = PreTokenizer::Kind::Metaspace;
    p.replacement = r.str(j, "replacement", "pre_tokenizer Metaspace");
    p.prepend_scheme = read_prepend_scheme(r, j);
    p.split = r.flag(j, "split", true);
  } else if (t == "Digits") {
    p.kind = PreTokenizer::Kind::Digits;
    p.individual_digits = r.flag(j, "individual_digits", false);
  } else {
    fail(r.path, "pre_tokenizer type '{}' is not supported", t);
  }
  out.push_back(std::move(p));
}

void read_decoder(const Reader& r, const json& j, std::vector<DecoderStep>& out) {
  std::string t = r.type(j, "decoder");
  DecoderStep s{};
  if (t == "Sequence") {
    for (const auto& n : r.array(j, "decoders", "decoder Sequence")) read_decoder(r, n, out);
    return;
  } else if (t == "ByteLevel") {
    s.kind = DecoderStep::Kind::ByteLevel;
  } else if (t == "Replace") {
    s.kind = DecoderStep::Kind::Replace;
    s.b = r.str(j, "content", "decoder Replace");
    if (r.pattern(j, "decoder Replace", &s.a) || s.a.empty())
      fail(r.path, "decoder Replace: only non-empty String patterns are supported");
  } else if (t == "ByteFallback") {
    s.kind = DecoderStep::Kind::ByteFallback;
  } else if (t == "Fuse") {
    s.kind = DecoderStep::Kind::Fuse;
  } else if (t == "Strip") {
    s.kind = DecoderStep::Kind::Strip;
    s.a = r.str(j, "content", "decoder Strip");
    auto count = [&](const char* key) -> std::size_t {
      auto it = j.find(key);
      if (it == j.end() || !it->is_number_unsigned())
        fail(r.path, "decoder Strip: '{}' must be a count", key);
      return std::min<std::size_t>(it->get<uint64_t>(), 1u << 20);
    };
    s.start = count("start");
    s.stop = count("stop");
  } else if (t == "Metaspace") {
    s.kind = DecoderStep::Kind::Metaspace;
    s.a = r.str(j, "replacement", "decoder Metaspace");
    s.prepend = read_prepend_scheme(r, j) != PrependScheme::Never;
  } else {
    fail(r.path, "decoder type '{}' is not supported", t);
  }
  out.push_back(std::move(s));
}

// Reads a post-processor into the ids added before and after the text.
void read_post_processor(const Reader& r, const json& j, const TokenizerData& d,
                         std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (j.is_null()) return;
  std::string t = r.type(j, "post_processor");
  if (t == "Sequence") {
    for (const auto& n : r.array(j, "processors", "post_processor Sequence"))
      read_post_processor(r, n, d, prefix, suffix);
  } else if (t == "ByteLevel") {
    // Only adjusts offsets; ids are unchanged.
  } else if (t == "TemplateProcessing") {
    auto sp = j.find("special_tokens");
    if (sp == j.end()) fail(r.path, "post_processor: missing 'special_tokens'");
    const json& specials = r.obj(*sp, "post_processor special_tokens");
    bool seen_a = false;
    for (const auto& item : r.array(j, "single", "post_processor")) {
      r.obj(item, "post_processor single item");
      if (item.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      if (!item.contains("SpecialToken")) fail(r.path, "post_processor: unknown template item");
      std::string name = r.str(item["SpecialToken"], "id", "post_processor SpecialToken");
      auto it = specials.find(name);
      if (it == specials.end())
        fail(r.path, "post_processor: special token '{}' is not in special_tokens", name);
      for (const auto& id : r.array(*it, "ids", "post_processor special_tokens")) {
        int32_t v = r.id(id, "post_processor special_tokens");
        (seen_a ? suffix : prefix).push_back(v);
      }
    }
  } else if (t == "RobertaProcessing" || t == "BertProcessing") {
    auto pair_id = [&](const char* key) {
      auto it = j.find(key);
      if (it == j.end() || !it->is_array() || it->size() != 2)
        fail(r.path, "post_processor: '{}' must be [token, id]", key);
      return r.id((*it)[1], "post_processor");
    };
    prefix.push_back(pair_id("cls"));
    suffix.push_back(pair_id("sep"));
  } else {
    fail(r.path, "post_processor type '{}' is not supported", t);
  }
}

// Adds merges in ranks 0, 1, ... in blocks: the three vocabulary lookups of each merge (a, b and
// a + b) run for a whole block at once (Vocab::find_all), and the table inserts prefetch ahead.
// One merge at a time, each lookup and insert waited on a cache miss: Qwen2's 151k merges took
// most of its tokenizer's load time.
class MergeBuilder {
 public:
  MergeBuilder(TokenizerData& d, const fs::path& path) : d_(d), path_(path) {}
  void add(std::string_view a, std::string_view b) {
    pending_.push_back({text_.size(), a.size(), b.size()});
    text_.append(a).append(b);  // a, b and a + b in one
    if (pending_.size() == kBlock) flush();
  }
  // Adds the merges still pending. Call once after the last add().
  void flush() {
    views_.clear();
    for (const Pending& p : pending_) {
      const std::string_view ab(text_.data() + p.offset, p.size_a + p.size_b);
      views_.insert(views_.end(), {ab.substr(0, p.size_a), ab.substr(p.size_a), ab});
    }
    ids_.resize(views_.size());
    d_.bpe.vocab.find_all(views_, ids_);
    for (std::size_t k = 0; k < pending_.size(); ++k) {
      const int32_t* id = &ids_[3 * k];
      if (id[0] < 0 || id[1] < 0 || id[2] < 0)
        fail(path_, "merge {} ('{} {}') uses a token that is not in the vocabulary", rank_ + k,
             views_[3 * k], views_[3 * k + 1]);
    }
    constexpr std::size_t kAhead = 16;
    for (std::size_t k = 0; k < pending_.size(); ++k) {
      if (k + kAhead < pending_.size()) d_.bpe.merges.prefetch(ids_[3 * (k + kAhead)], ids_[3 * (k + kAhead) + 1]);
      d_.bpe.merges.insert(ids_[3 * k], ids_[3 * k + 1], {static_cast<int32_t>(rank_ + k), ids_[3 * k + 2]});
    }
    rank_ += pending_.size();
    pending_.clear();
    text_.clear();
  }

 private:
  static constexpr std::size_t kBlock = 1024;
  struct Pending {
    std::size_t offset, size_a, size_b;  // in text_
  };
  TokenizerData& d_;
  const fs::path& path_;
  std::vector<Pending> pending_;
  std::string text_;
  std::vector<std::string_view> views_;  // a, b, a + b of each pending merge
  std::vector<int32_t> ids_;
  std::size_t rank_ = 0;
};

void add_vocab_entry(const Reader& r, TokenizerData& d, std::string_view token, const json& id) {
  // There are 100k+ entries: build the error context only for a bad one.
  int64_t n = id.is_number_integer() ? id.get<int64_t>() : -1;
  int32_t v = n >= 0 && n < kMaxVocab ? static_cast<int32_t>(n)
                                      : r.id(id, "vocab entry '" + std::string(token) + "'");
  if (!d.bpe.vocab.insert(token, v)) fail(r.path, "vocab: duplicate token '{}'", token);
}

void read_vocab(const Reader& r, const json& vocab, TokenizerData& d) {
  r.obj(vocab, "model vocab");
  d.bpe.vocab.reserve(vocab.size(), 0);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) add_vocab_entry(r, d, it.key(), *it);
}

// model.merges, highest priority first, as streamed by parse_tokenizer_json.
void read_merges(const Reader& r, const RawBpe& raw, TokenizerData& d) {
  d.bpe.merges.reserve(raw.merges.size());
  MergeBuilder merges(d, r.path);
  for (std::size_t i = 0; i < raw.merges.size(); ++i) {
    const auto& e = raw.merges[i];
    std::string_view a = e.a(raw.merge_text), b = e.b(raw.merge_text);
    if (e.kind == RawBpe::Merge::Kind::Text) {
      auto sp = a.find(' ', 1);  // a pair's first token is never empty
      if (sp == std::string_view::npos) fail(r.path, "merge {} ('{}') is not 'a b'", i, a);
      b = a.substr(sp + 1);
      a = a.substr(0, sp);
    } else if (e.kind == RawBpe::Merge::Kind::Bad) {
      fail(r.path, "merge {} is neither 'a b' nor [a, b]", i);
    }
    merges.add(a, b);
  }
  merges.flush();
}

// `raw` holds the vocab and merges when they had the right JSON type; otherwise they are in `m`.
void read_model(const Reader& r, const json& m, RawBpe& raw, TokenizerData& d) {
  std::string t = r.type(m, "model");
  if (t != "BPE") fail(r.path, "model type '{}' is not supported (supported: BPE)", t);
  if (raw.has_vocab) {
    std::size_t bytes = 0;
    for (const auto& [token, id] : raw.vocab) bytes += token.size();
    d.bpe.vocab.reserve(raw.vocab.size(), bytes);
    // Each insert's slot is prefetched some tokens ahead, as in MergeBuilder.
    constexpr std::size_t kAhead = 16;
    for (std::size_t k = 0; k < raw.vocab.size(); ++k) {
      if (k + kAhead < raw.vocab.size()) d.bpe.vocab.prefetch(raw.vocab[k + kAhead].first);
      add_vocab_entry(r, d, raw.vocab[k].first, raw.vocab[k].second);
    }
  } else {
    auto vocab = m.find("vocab");
    if (vocab == m.end()) fail(r.path, "model: missing 'vocab'");
    read_vocab(r, *vocab, d);
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = m.find(key);
    if (it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      fail(r.path, "model: '{}' is not supported", key);
  }
  auto dropout = m.find("dropout");
  if (dropout != m.end() && !dropout->is_null() && !(dropout->is_number() && *dropout == 0))
    fail(r.path, "model: BPE dropout is not supported");
  if (!raw.has_merges) fail(r.path, "model: 'merges' must be an array");  // missing, or not one
  read_merges(r, raw, d);
  auto unk = m.find("unk_token");
  if (unk != m.end() && !unk->is_null()) {
    if (!unk->is_string()) fail(r.path, "model: 'unk_token' must be a string");
    const int32_t id = d.bpe.vocab.find(unk->get<std::string>());
    if (id < 0) fail(r.path, "model: unk_token '{}' is not in the vocabulary", unk->get<std::string>());
    d.bpe.unk_id = id;
  }
  d.bpe.fuse_unk = r.flag(m, "fuse_unk", false);
  d.bpe.byte_fallback = r.flag(m, "byte_fallback", false);
  d.bpe.ignore_merges = r.flag(m, "ignore_merges", false);
}

void read_added_tokens(const Reader& r, const json& arr, TokenizerData& d) {
  if (!arr.is_array()) fail(r.path, "'added_tokens' must be an array");
  for (const auto& a : arr) {
    r.obj(a, "added token");
    AddedToken t;
    t.content = r.str(a, "content", "added token");
    if (t.content.empty()) fail(r.path, "added token with empty content");
    t.id = r.id(a.contains("id") ? a["id"] : json(), "added token '" + t.content + "'");
    t.special = r.flag(a, "special", false);
    t.lstrip = r.flag(a, "lstrip", false);
    t.rstrip = r.flag(a, "rstrip", false);
    t.single_word = r.flag(a, "single_word", false);
    d.added.push_back(std::move(t));
  }
}

// bos_token etc. in tokenizer_config.json: a string, null, or {"content": "..."}.
std::optional<std::string> config_token(const Reader& r, const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return r.str(*it, "content", key);
  fail(r.path, "'{}' must be a string or an object with 'content'", key);
}

// Sorts out ids, specials and the added-token index once all sources are read.
void finish(TokenizerData& d) {
  int64_t n = 0;
  d.bpe.vocab.for_each([&](std::string_view, int32_t id) { n = std::max<int64_t>(n, id + 1); });
  for (const auto& a : d.added) n = std::max<int64_t>(n, a.id + 1);
  // Ids index arrays of n_vocab entries: a lone huge id must not make them huge.
  std::size_t entries = d.bpe.vocab.size() + d.added.size();
  if (static_cast<std::size_t>(n) > 2 * entries + 1024)
    fail(d.path, "token ids are not dense (largest id {} for {} tokens)", n - 1, entries);
  d.id_to_token.assign(static_cast<std::size_t>(n), {});
  d.added_ids.clear();
  for (auto& v : d.added_by_first) v.clear();
  d.special.assign(static_cast<std::size_t>(n), 0);
  d.bpe.vocab.for_each([&](std::string_view tok, int32_t id) { d.id_to_token[id] = tok; });
  // Later entries with the same content win, as in the reference.
  for (const auto& a : d.added) {
    d.id_to_token[a.id] = a.content;
    d.special[a.id] = a.special;
    d.added_ids[a.content] = a.id;
  }
  for (uint32_t i = 0; i < d.added.size(); ++i)
    d.added_by_first[static_cast<unsigned char>(d.added[i].content[0])].push_back(i);
  for (auto& v : d.added_by_first)
    std::stable_sort(v.begin(), v.end(), [&](uint32_t x, uint32_t y) {
      return d.added[x].content.size() > d.added[y].content.size();
    });
  // -1 where the vocabulary has no <0xNN> token.
  for (int b = 0; b < 256; ++b) d.bpe.byte_ids[b] = d.bpe.vocab.find(fmt::format("<0x{:02X}>", b));
}

std::optional<int32_t> lookup(const TokenizerData& d, const std::string& tok) {
  if (auto it = d.added_ids.find(tok); it != d.added_ids.end()) return it->second;
  if (const int32_t id = d.bpe.vocab.find(tok); id >= 0) return id;
  return std::nullopt;
}

// tokenizer_config.json: special tokens, BOS/EOS policy, chat template.
void read_config(TokenizerData& d, bool from_tokenizer_json) {
  if (!fs::exists(d.config_path)) return;
  json cfg = parse_json(d.config_path);
  Reader r{d.config_path};
  r.obj(cfg, "tokenizer_config");
  if (!from_tokenizer_json) {
    // The fallback has no added_tokens list: take the ones the config declares.
    if (auto it = cfg.find("added_tokens_decoder"); it != cfg.end() && it->is_object()) {
      for (auto e = it->begin(); e != it->end(); ++e) {
        AddedToken t;
        t.content = r.str(e.value(), "content", "added_tokens_decoder");
        std::size_t used = 0;
        long id = -1;
        try {
          id = std::stol(e.key(), &used);
        } catch (const std::exception&) {
        }
        if (used != e.key().size() || id < 0 || id >= kMaxVocab || t.content.empty())
          fail(r.path, "added_tokens_decoder: bad entry '{}'", e.key());
        t.id = static_cast<int32_t>(id);
        t.special = r.flag(e.value(), "special", true);
        t.lstrip = r.flag(e.value(), "lstrip", false);
        t.rstrip = r.flag(e.value(), "rstrip", false);
        t.single_word = r.flag(e.value(), "single_word", false);
        d.added.push_back(std::move(t));
      }
    }
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
      auto tok = config_token(r, cfg, key);
      if (!tok || tok->empty()) continue;
      const int32_t id = d.bpe.vocab.find(*tok);
      bool known = std::any_of(d.added.begin(), d.added.end(),
                               [&](const AddedToken& a) { return a.content == *tok; });
      if (id >= 0 && !known) {
        AddedToken t;
        t.content = *tok;
        t.id = id;
        t.special = true;
        d.added.push_back(std::move(t));
      }
    }
    finish(d);
  }
  auto special_id = [&](const char* key) -> std::optional<int32_t> {
    auto tok = config_token(r, cfg, key);
    if (!tok) return std::nullopt;
    auto id = lookup(d, *tok);
    if (!id) fail(r.path, "{} '{}' is not in the vocabulary", key, *tok);
    return id;
  };
  d.bos = special_id("bos_token");
  d.eos = special_id("eos_token");
  // transformers rebuilds the post-processor from these flags when they are given.
  if (cfg.contains("add_bos_token")) {
    d.prefix_ids.clear();
    if (r.flag(cfg, "add_bos_token", false) && d.bos) d.prefix_ids.push_back(*d.bos);
  }
  if (cfg.contains("add_eos_token")) {
    d.suffix_ids.clear();
    if (r.flag(cfg, "add_eos_token", false) && d.eos) d.suffix_ids.push_back(*d.eos);
  }
  if (auto it = cfg.find("chat_template"); it != cfg.end() && !it->is_null()) {
    if (it->is_string()) {
      d.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates: [{"name": "default", "template": "..."}, ...]; use "default".
      for (const auto& e : *it)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
            e["template"].is_string())
          d.chat_template = e["template"].get<std::string>();
      if (d.chat_template.empty()) fail(r.path, "chat_template list has no 'default' entry");
    } else {
      fail(r.path, "'chat_template' must be a string");
    }
  }
}

void load_from_tokenizer_json(TokenizerData& d) {
  json j;
  RawBpe raw;
  parse_tokenizer_json(d.path, read_file(d.path), j, raw);
  Reader r{d.path};
  r.obj(j, "tokenizer.json");
  auto get = [&](const char* key) -> const json& {
    static const json kNull;
    auto it = j.find(key);
    return it == j.end() ? kNull : *it;
  };
  if (!j.contains("model")) fail(d.path, "missing 'model'");
  read_model(r, j["model"], raw, d);
  if (!get("added_tokens").is_null()) read_added_tokens(r, get("added_tokens"), d);
  finish(d);
  read_normalizer(r, get("normalizer"), d.normalizers);
  read_pre_tokenizer(r, get("pre_tokenizer"), d.pre_tokenizers);
  if (!get("decoder").is_null()) {
    read_decoder(r, get("decoder"), d.decoders);
    d.has_decoder = true;
  }
  read_post_processor(r, get("post_processor"), d, d.prefix_ids, d.suffix_ids);
  for (int32_t id : d.prefix_ids)
    if (id >= static_cast<int64_t>(d.id_to_token.size()))
      fail(d.path, "post_processor: id {} is not in the vocabulary", id);
  for (int32_t id : d.suffix_ids)
    if (id >= static_cast<int64_t>(d.id_to_token.size()))
      fail(d.path, "post_processor: id {} is not in the vocabulary", id);
}

void load_from_vocab_merges(TokenizerData& d, const fs::path& merges_path) {
  json vocab = parse_json(d.path);
  Reader r{d.path};
  read_vocab(r, vocab, d);
  std::istringstream in(read_file(merges_path));
  std::string line;
  std::size_t line_no = 0;
  MergeBuilder merges(d, merges_path);
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    auto sp = line.find(' ', 1);
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      fail(merges_path, "line {}: expected 'a b', got '{}'", line_no, line);
    merges.add(std::string_view(line).substr(0, sp), std::string_view(line).substr(sp + 1));
  }
  merges.flush();
  // GPT-2's own tokenizer treats its one control token as special.
  if (const int32_t id = d.bpe.vocab.find("<|endoftext|>"); id >= 0)
    d.added.push_back({"<|endoftext|>", id, true});
  // GPT-2's original setup: byte-level BPE with its own regex, no normalizer.
  PreTokenizer p{};
  p.kind = PreTokenizer::Kind::ByteLevel;
  p.add_prefix_space = false;
  p.use_regex = true;
  d.pre_tokenizers.push_back(p);
  DecoderStep byte_level{};
  byte_level.kind = DecoderStep::Kind::ByteLevel;
  d.decoders.push_back(byte_level);
  d.has_decoder = true;
  finish(d);
}

}  // namespace

std::shared_ptr<TokenizerData> load_tokenizer_data(const fs::path& model_dir) {
  auto d = std::make_shared<TokenizerData>();
  d->dir = model_dir;
  d->config_path = model_dir / "tokenizer_config.json";
  fs::path tj = model_dir / "tokenizer.json";
  try {
    if (fs::exists(tj)) {
      d->path = tj;
      load_from_tokenizer_json(*d);
      read_config(*d, true);
    } else if (fs::exists(model_dir / "vocab.json") && fs::exists(model_dir / "merges.txt")) {
      d->path = model_dir / "vocab.json";
      load_from_vocab_merges(*d, model_dir / "merges.txt");
      read_config(*d, false);
    } else {
      fail(model_dir, "no tokenizer.json (nor vocab.json + merges.txt)");
    }
  } catch (const nlohmann::json::exception& e) {
    // Accessors check types first; this catches anything they missed, still as one line.
    throw FormatError(fmt::format("{}: {}", d->path.string(), e.what()));
  }
  if (d->id_to_token.empty()) fail(d->path, "empty vocabulary");
  return d;
}

}  // namespace qllm
