// Tokenizer: the public entry points, tying the stages of tokenizer_impl.h together.
#include "format/tokenizer.h"

#include "format/chat_template.h"
#include "format/tokenizer_impl.h"
#include "format/utf8.h"
#include "util/error.h"

namespace qllm {

Tokenizer Tokenizer::load(const std::filesystem::path& model_dir) {
  return Tokenizer(load_tokenizer_data(model_dir));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const TokenizerData& d = *d_;
  // The regexes need valid UTF-8; invalid bytes become U+FFFD, as any UTF-8 reader would do.
  std::string clean;
  if (!utf8::is_valid(text)) {
    clean = utf8::sanitize(text);
    text = clean;
  }
  std::vector<int32_t> ids;
  if (add_special) ids = d.prefix_ids;
  for (const Segment& seg : split_added_tokens(d, text)) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
      continue;
    }
    bool at_start = seg.text.data() == text.data();
    for (const auto& word : pre_tokenize(d, normalize(d, std::string(seg.text)), at_start))
      bpe_encode(d, word, ids);
  }
  if (add_special) ids.insert(ids.end(), d.suffix_ids.begin(), d.suffix_ids.end());
  return ids;
}

namespace {

std::string decode_impl(const TokenizerData& d, std::span<const int32_t> ids, bool skip_special,
                        bool raw) {
  const auto n_vocab = static_cast<int64_t>(d.id_to_token.size());
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab)
      fail(d.path, "token id {} is out of range (vocabulary has {} tokens)", id, n_vocab);
    if (skip_special && d.special[id]) continue;
    // Ids without a token (gaps in the numbering) decode to nothing, as in the reference.
    if (!d.id_to_token[id].empty()) tokens.push_back(d.id_to_token[id]);
  }
  return run_decoders(d, std::move(tokens), raw);
}

}  // namespace

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids, bool skip_special) const {
  return decode_impl(*d_, ids, skip_special, /*raw=*/true);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  return utf8::sanitize(decode_impl(*d_, ids, skip_special, /*raw=*/false));
}

int32_t Tokenizer::n_vocab() const {
  return static_cast<int32_t>(d_->id_to_token.size());
}
std::optional<int32_t> Tokenizer::bos_id() const {
  return d_->bos;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return d_->eos;
}
const std::filesystem::path& Tokenizer::path() const {
  return d_->path;
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  std::string key(token);
  if (auto it = d_->added_ids.find(key); it != d_->added_ids.end()) return it->second;
  if (const int32_t id = d_->bpe.vocab.find(key); id >= 0) return id;
  return std::nullopt;
}

std::string_view Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab())
    fail(d_->path, "token id {} is out of range (vocabulary has {} tokens)", id, n_vocab());
  return d_->id_to_token[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < n_vocab() && d_->special[id];
}

bool Tokenizer::has_chat_template() const {
  return ChatTemplate::supports(d_->chat_template);
}

std::string Tokenizer::apply_chat_template(
    const std::vector<std::pair<std::string, std::string>>& role_content) const {
  if (d_->chat_template.empty())
    fail(d_->config_path, "no chat template (tokenizer_config.json has no 'chat_template')");
  if (!ChatTemplate::supports(d_->chat_template))
    fail(d_->config_path, "chat template is not one qllm can render (supported: ChatML)");
  return ChatTemplate(d_->chat_template).render(role_content);
}

}  // namespace qllm
