// The normalizer chain, applied to each plain segment (never to added tokens).
#include "format/tokenizer_impl.h"

namespace qllm {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos);
  s.swap(out);
}

void replace_regex(std::string& s, const TokenRegex& re, const std::string& to) {
  std::string out;
  std::size_t pos = 0;
  for (auto [b, e] : re.find_all(s)) {
    out.append(s, pos, b - pos);
    out += to;
    pos = e;
  }
  out.append(s, pos);
  s.swap(out);
}

bool is_ascii_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

}  // namespace

std::string normalize(const TokenizerData& d, std::string text) {
  for (const auto& n : d.normalizers) {
    switch (n.kind) {
      case Normalizer::Kind::Nfc:
        text = nfc(text);
        break;
      case Normalizer::Kind::Prepend:
        // The reference prepends only to non-empty text.
        if (!text.empty()) text.insert(0, n.a);
        break;
      case Normalizer::Kind::Replace:
        if (n.regex)
          replace_regex(text, *n.regex, n.b);
        else
          replace_all(text, n.a, n.b);
        break;
      case Normalizer::Kind::Lowercase:
        // ASCII only: no vocabulary handled here lowercases (BERT-style models use WordPiece).
        for (char& c : text)
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        break;
      case Normalizer::Kind::Strip: {
        std::size_t b = 0, e = text.size();
        if (n.left)
          while (b < e && is_ascii_space(text[b])) ++b;
        if (n.right)
          while (e > b && is_ascii_space(text[e - 1])) --e;
        text = text.substr(b, e - b);
        break;
      }
    }
  }
  return text;
}

}  // namespace qllm
