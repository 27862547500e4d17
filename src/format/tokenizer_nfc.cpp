// Unicode NFC (canonical decomposition, canonical ordering, canonical composition), for the
// tokenizer.json "NFC" normalizer (Qwen2). The Unicode data comes from a generated table;
// Hangul syllables are decomposed and composed arithmetically (Unicode 3.12).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "format/tokenizer_impl.h"
#include "format/utf8.h"

namespace qllm {
namespace {

struct NfcClass {
  uint32_t cp, ccc;
};
struct NfcDecomposition {
  uint32_t cp, first, second;
};
struct NfcComposition {
  uint32_t first, second, composite;
};

#include "format/tokenizer_nfc_table.inc"

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint32_t combining_class(char32_t c) {
  auto it = std::lower_bound(std::begin(kNfcCombiningClass), std::end(kNfcCombiningClass), c,
                             [](const NfcClass& e, char32_t v) { return e.cp < v; });
  return it != std::end(kNfcCombiningClass) && it->cp == c ? it->ccc : 0;
}

void decompose(char32_t c, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kNfcDecomposition), std::end(kNfcDecomposition), c,
                             [](const NfcDecomposition& e, char32_t v) { return e.cp < v; });
  if (it == std::end(kNfcDecomposition) || it->cp != c) {
    out.push_back(c);
    return;
  }
  decompose(it->first, out);
  if (it->second) decompose(it->second, out);
}

char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kNfcComposition), std::end(kNfcComposition), a,
                             [](const NfcComposition& e, char32_t v) { return e.first < v; });
  for (; it != std::end(kNfcComposition) && it->first == a; ++it)
    if (it->second == b) return it->composite;
  return 0;
}

}  // namespace

std::string nfc(std::string_view text) {
  // Code points below U+0300 are all NFC and never compose with a neighbour, and their UTF-8
  // lead bytes are below 0xCC: most text takes this exit.
  if (std::none_of(text.begin(), text.end(),
                   [](char c) { return static_cast<unsigned char>(c) >= 0xCC; }))
    return std::string(text);

  std::vector<char32_t> d;
  d.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) decompose(utf8::next(text, i), d);

  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (std::size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }

  // Canonical composition: each character joins the last starter unless blocked by a
  // character in between of the same or a higher class.
  std::vector<char32_t> out;
  out.reserve(d.size());
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t starter = kNone;  // index in `out` of the last starter
  uint32_t last_class = 0;      // class of the last character appended
  for (char32_t c : d) {
    uint32_t cls = combining_class(c);
    if (starter != kNone && (last_class < cls || last_class == 0)) {
      if (char32_t comp = compose(out[starter], c)) {
        out[starter] = comp;
        continue;
      }
    }
    if (cls == 0) starter = out.size();
    last_class = cls;
    out.push_back(c);
  }
  std::string s;
  s.reserve(text.size());
  for (char32_t c : out) utf8::append(s, c);
  return s;
}

}  // namespace qllm
