// The decoder chain, and streaming decode on top of it.
//
// Steps work on the list of token strings, as in the reference: ByteLevel maps each token's
// characters back to bytes, Replace rewrites ("▁" -> " "), ByteFallback turns runs of <0xNN>
// tokens into their bytes, Fuse joins everything into one string, Strip cuts characters from
// the ends of each string, Metaspace does "▁" -> " " and drops the prefix space of token 0.
// Strings here are raw bytes; decode() makes them valid UTF-8 at the very end.
#include "format/tokenizer.h"
#include "format/tokenizer_impl.h"
#include "format/utf8.h"

namespace qllm {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xNN>" -> the byte, or -1.
int fallback_byte(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos);
  s.swap(out);
}

std::string byte_level_decode(const std::string& t) {
  std::string out;
  out.reserve(t.size());
  for (std::size_t i = 0; i < t.size();) {
    int b = byte_level_byte(utf8::next(t, i));
    // A token with characters outside the map (an added token) is kept as it is.
    if (b < 0) return t;
    out += static_cast<char>(b);
  }
  return out;
}

}  // namespace

std::string run_decoders(const TokenizerData& d, std::vector<std::string> tokens, bool raw) {
  if (!d.has_decoder) {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const auto& step : d.decoders) {
    switch (step.kind) {
      case DecoderStep::Kind::ByteLevel:
        for (auto& t : tokens) t = byte_level_decode(t);
        break;
      case DecoderStep::Kind::Replace:
        for (auto& t : tokens) replace_all(t, step.a, step.b);
        break;
      case DecoderStep::Kind::ByteFallback: {
        std::vector<std::string> out;
        std::string bytes;
        bool in_run = false;
        auto end_run = [&] {
          if (!raw && !utf8::is_valid(bytes)) {
            std::string repl;
            for (std::size_t k = 0; k < bytes.size(); ++k) utf8::append(repl, utf8::kReplacement);
            bytes.swap(repl);
          }
          out.push_back(std::move(bytes));
          bytes.clear();
          in_run = false;
        };
        for (auto& t : tokens) {
          int b = fallback_byte(t);
          if (b >= 0) {
            bytes += static_cast<char>(b);
            in_run = true;
            continue;
          }
          if (in_run) end_run();
          out.push_back(std::move(t));
        }
        if (in_run) end_run();
        tokens = std::move(out);
        break;
      }
      case DecoderStep::Kind::Fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecoderStep::Kind::Strip:
        for (auto& t : tokens) {
          std::size_t b = 0, e = t.size(), n = step.a.size();
          for (std::size_t k = 0; k < step.start && e - b >= n && t.compare(b, n, step.a) == 0; ++k)
            b += n;
          for (std::size_t k = 0; k < step.stop && e - b >= n && t.compare(e - n, n, step.a) == 0;
               ++k)
            e -= n;
          t = t.substr(b, e - b);
        }
        break;
      case DecoderStep::Kind::Metaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          replace_all(tokens[i], step.a, " ");
          if (i == 0 && step.prepend && !tokens[i].empty() && tokens[i][0] == ' ')
            tokens[i].erase(0, 1);
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

// ---- StreamDecoder ----

std::string StreamDecoder::push(int32_t id) {
  window_.push_back(id);
  std::string text = tok_->decode_bytes(window_, skip_special_);
  // The decoders used here only ever extend the text; if one did not, restart from the
  // common prefix rather than print something twice.
  std::size_t common = 0;
  while (common < printed_.size() && common < text.size() && printed_[common] == text[common])
    ++common;
  printed_.resize(common);
  std::string_view fresh = std::string_view(text).substr(common);
  std::size_t n = utf8::complete_prefix(fresh);
  std::string out = utf8::sanitize(fresh.substr(0, n));
  if (n == fresh.size()) {
    // Everything is out: keep only the last token as context for the next one (so that a
    // leading-space rule applies to it, not to the new token).
    window_.assign(1, id);
    printed_ = tok_->decode_bytes(window_, skip_special_);
  } else {
    printed_ = text.substr(0, common + n);
  }
  return out;
}

std::string StreamDecoder::flush() {
  std::string text = tok_->decode_bytes(window_, skip_special_);
  std::string out = text.size() > printed_.size()
                        ? utf8::sanitize(std::string_view(text).substr(printed_.size()))
                        : std::string();
  window_.clear();
  printed_.clear();
  return out;
}

}  // namespace qllm
