// UTF-8 helpers shared by the tokenizer: code point iteration, encoding, and the two ways of
// dealing with byte strings that are not (yet) valid UTF-8.
//
// Tokens of byte-level and byte-fallback vocabularies may hold a fraction of a character, so
// decoded byte strings are only valid UTF-8 once every token is in. `complete_prefix` tells a
// streaming decoder how much it may print; `sanitize` turns the final bytes into valid UTF-8
// the way Rust's String::from_utf8_lossy does (one U+FFFD per maximal invalid subpart), which
// is what Hugging Face tokenizers return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qllm::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Number of bytes of the sequence that starts with lead byte `b`, or 0 if `b` cannot start one.
inline int sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Length of the valid sequence at s[i], or 0 if the bytes there are not a complete valid
// sequence. `*incomplete` is set when the bytes are a valid but truncated start (the string
// ends too early).
inline int valid_length(std::string_view s, std::size_t i, bool* incomplete = nullptr) {
  if (incomplete) *incomplete = false;
  auto b0 = static_cast<unsigned char>(s[i]);
  int n = sequence_length(b0);
  if (n <= 1) return n;
  for (int k = 1; k < n; ++k) {
    if (i + k >= s.size()) {
      if (incomplete) *incomplete = true;
      return 0;
    }
    auto b = static_cast<unsigned char>(s[i + k]);
    // The second byte's range depends on the lead byte (no overlongs, no surrogates, <= 10FFFF).
    unsigned char lo = 0x80, hi = 0xBF;
    if (k == 1) {
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    if (b < lo || b > hi) return 0;
  }
  return n;
}

// Decodes the code point at s[i] and advances i. Invalid bytes yield U+FFFD and advance by one.
inline char32_t next(std::string_view s, std::size_t& i) {
  int n = valid_length(s, i);
  if (n == 0) {
    ++i;
    return kReplacement;
  }
  auto b = [&](int k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k])); };
  char32_t c;
  switch (n) {
    case 1:
      c = b(0);
      break;
    case 2:
      c = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
      break;
    case 3:
      c = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      break;
    default:
      c = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  i += n;
  return c;
}

inline void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

inline std::string encode(char32_t c) {
  std::string s;
  append(s, c);
  return s;
}

// Length of the longest prefix of `s` that does not end inside a truncated sequence: bytes that
// could still become a valid character when more arrive are held back; invalid bytes are not.
inline std::size_t complete_prefix(std::string_view s) {
  // A truncated sequence is at most 3 bytes long, so only the tail needs a look.
  std::size_t start = s.size() > 3 ? s.size() - 3 : 0;
  for (std::size_t i = start; i < s.size(); ++i) {
    bool incomplete = false;
    if (static_cast<unsigned char>(s[i]) >= 0xC2 && valid_length(s, i, &incomplete) == 0 &&
        incomplete)
      return i;
  }
  return s.size();
}

// Valid UTF-8 from arbitrary bytes: each maximal invalid subpart becomes one U+FFFD.
inline std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    int n = valid_length(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    // Skip the lead byte and any continuation bytes that were valid so far for it.
    std::size_t j = i + 1;
    int want = sequence_length(static_cast<unsigned char>(s[i]));
    while (want > 1 && j < s.size() && j - i < static_cast<std::size_t>(want)) {
      std::string_view probe = s.substr(i, j - i + 1);
      bool incomplete = false;
      if (valid_length(probe, 0, &incomplete) == 0 && !incomplete) break;
      ++j;
    }
    append(out, kReplacement);
    i = j;
  }
  return out;
}

inline bool is_valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    int n = valid_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace qllm::utf8
