// Added tokens (<|im_start|>, <s>, ...) are found in the raw text before normalization and
// pre-tokenization, so that they are never split. At each position the longest token that
// matches wins (leftmost-longest, as the reference's Aho-Corasick matcher does).
#include "format/tokenizer_impl.h"
#include "format/utf8.h"

namespace qllm {
namespace {

// Unicode White_Space, the set Rust's char::is_whitespace uses for lstrip/rstrip.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Alphanumeric or '_'; every non-ASCII character counts as a letter here (approximation).
bool is_word_char(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (c >= 0x80 && !is_space(c));
}

std::size_t char_start_before(std::string_view s, std::size_t i) {
  do --i;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

char32_t char_before(std::string_view s, std::size_t i) {
  std::size_t b = char_start_before(s, i);
  return utf8::next(s, b);
}

char32_t char_at(std::string_view s, std::size_t i) {
  return utf8::next(s, i);
}

}  // namespace

std::vector<Segment> split_added_tokens(const TokenizerData& d, std::string_view text) {
  std::vector<Segment> out;
  std::size_t plain_start = 0;  // start of the plain text not yet emitted
  std::size_t i = 0;
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (uint32_t k : d.added_by_first[static_cast<unsigned char>(text[i])]) {
      const AddedToken& a = d.added[k];
      if (text.substr(i, a.content.size()) != a.content) continue;
      if (a.single_word) {
        std::size_t e = i + a.content.size();
        if (i > 0 && is_word_char(char_before(text, i))) continue;
        if (e < text.size() && is_word_char(char_at(text, e))) continue;
      }
      hit = &a;
      break;  // candidates are sorted longest first
    }
    if (!hit) {
      ++i;
      continue;
    }
    std::size_t b = i, e = i + hit->content.size();
    if (hit->lstrip)
      while (b > plain_start && is_space(char_before(text, b))) b = char_start_before(text, b);
    if (hit->rstrip)
      while (e < text.size()) {
        std::size_t n = e;
        if (!is_space(utf8::next(text, n))) break;
        e = n;
      }
    if (b > plain_start) out.push_back({text.substr(plain_start, b - plain_start), -1});
    out.push_back({{}, hit->id});
    plain_start = i = e;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
  return out;
}

}  // namespace qllm
