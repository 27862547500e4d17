// The pre-tokenizer chain: splits a normalized segment into the words BPE runs on.
//
// Each step maps every current piece to zero or more pieces, as the reference's
// PreTokenizedString::split does, so steps compose (Qwen2: Split with its regex, then
// ByteLevel without regex).
#include <algorithm>

#include "format/tokenizer_impl.h"
#include "format/utf8.h"

namespace qllm {
namespace {

struct Piece {
  std::string text;
  bool at_start;  // begins at the start of the original input (Metaspace "first")
};

// Cuts `s` into [begin, end) ranges flagged as delimiter or not, then merges them per behavior.
std::vector<std::pair<std::size_t, std::size_t>> split_ranges(const std::string& s,
                                                              const TokenRegex& re,
                                                              SplitBehavior behavior, bool invert) {
  struct Part {
    std::size_t b, e;
    bool delim;
  };
  std::vector<Part> parts;
  std::size_t pos = 0;
  for (auto [b, e] : re.find_all(s)) {
    if (b > pos) parts.push_back({pos, b, invert});
    parts.push_back({b, e, !invert});
    pos = e;
  }
  if (pos < s.size()) parts.push_back({pos, s.size(), invert});

  std::vector<Part> merged;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (const auto& p : parts)
        if (!p.delim) merged.push_back(p);
      break;
    case SplitBehavior::Isolated:
      merged = parts;
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool prev_delim = false;
      for (const auto& p : parts) {
        if (p.delim && !prev_delim && !merged.empty())
          merged.back().e = p.e;
        else
          merged.push_back(p);
        prev_delim = p.delim;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev_delim = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->delim && !prev_delim && !merged.empty())
          merged.back().b = it->b;
        else
          merged.push_back(*it);
        prev_delim = it->delim;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::Contiguous: {
      bool first = true, prev_delim = false;
      for (const auto& p : parts) {
        if (!first && p.delim == prev_delim)
          merged.back().e = p.e;
        else
          merged.push_back(p);
        first = false;
        prev_delim = p.delim;
      }
      break;
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const auto& p : merged)
    if (p.e > p.b) out.emplace_back(p.b, p.e);
  return out;
}

void split_into(std::vector<Piece>& out, Piece&& p, const TokenRegex& re, SplitBehavior behavior,
                bool invert) {
  for (auto [b, e] : split_ranges(p.text, re, behavior, invert))
    out.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
}

std::string to_byte_level(std::string_view s) {
  const auto& chars = byte_level_chars();
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) out += chars[static_cast<unsigned char>(c)];
  return out;
}

const TokenRegex& metaspace_regex(const std::string& replacement) {
  // One replacement character in practice ("▁"); compiled per distinct value.
  static std::mutex mu;
  static std::unordered_map<std::string, std::unique_ptr<TokenRegex>> cache;
  std::lock_guard lock(mu);
  auto& re = cache[replacement];
  if (!re) re = std::make_unique<TokenRegex>("\\Q" + replacement + "\\E");
  return *re;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
  // U+0100 onwards in byte order, so every byte has a visible, non-space character.
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = utf8::encode(printable ? static_cast<char32_t>(b) : next++);
    }
    return t;
  }();
  return table;
}

int byte_level_byte(char32_t c) {
  static const std::array<int16_t, 324> inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    const auto& t = byte_level_chars();
    for (int b = 0; b < 256; ++b) {
      std::size_t i = 0;
      inv[utf8::next(t[b], i)] = static_cast<int16_t>(b);
    }
    return inv;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

const TokenRegex& gpt2_regex() {
  static const TokenRegex re(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  return re;
}

std::vector<std::string> pre_tokenize(const TokenizerData& d, std::string text, bool first) {
  std::vector<Piece> pieces;
  pieces.push_back({std::move(text), first});
  for (const auto& step : d.pre_tokenizers) {
    std::vector<Piece> next;
    next.reserve(pieces.size());
    for (auto& p : pieces) {
      switch (step.kind) {
        case PreTokenizer::Kind::Split:
          split_into(next, std::move(p), *step.regex, step.behavior, step.invert);
          break;
        case PreTokenizer::Kind::ByteLevel: {
          if (step.add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
          if (step.use_regex) {
            std::vector<Piece> words;
            split_into(words, std::move(p), gpt2_regex(), SplitBehavior::Isolated, false);
            for (auto& w : words) next.push_back({to_byte_level(w.text), w.at_start});
          } else {
            next.push_back({to_byte_level(p.text), p.at_start});
          }
          break;
        }
        case PreTokenizer::Kind::Metaspace: {
          std::string s;
          s.reserve(p.text.size() + 8);
          for (char c : p.text) {
            if (c == ' ')
              s += step.replacement;
            else
              s += c;
          }
          bool prepend = step.prepend_scheme == PrependScheme::Always ||
                         (step.prepend_scheme == PrependScheme::First && p.at_start);
          if (prepend && s.rfind(step.replacement, 0) != 0) s.insert(0, step.replacement);
          Piece q{std::move(s), p.at_start};
          if (step.split)
            split_into(next, std::move(q), metaspace_regex(step.replacement),
                       SplitBehavior::MergedWithNext, false);
          else
            next.push_back(std::move(q));
          break;
        }
        case PreTokenizer::Kind::Digits: {
          static const TokenRegex one(R"(\p{N})"), run(R"(\p{N}+)");
          split_into(next, std::move(p), step.individual_digits ? one : run,
                     SplitBehavior::Isolated, false);
          break;
        }
      }
    }
    pieces = std::move(next);
  }
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (auto& p : pieces)
    if (!p.text.empty()) out.push_back(std::move(p.text));
  return out;
}

}  // namespace qllm
