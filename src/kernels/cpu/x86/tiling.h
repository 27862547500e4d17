// Register tiling shared by the x86 kernel files: a kernel object provides
// tile<R, T>(o, t0), computing R output rows for T tokens with R*T accumulators in registers,
// and kActBytes, the bytes of activations it reads per input element and token.
//
// Rows are the outer loop inside a block of tokens, so a tile of weights read once serves TMax
// tokens, and the block's activations stay in L1 while every row tile of the thread's range
// streams past them: without blocks, a 128-token prefill re-read all activations from L2 for
// every row tile, twice the traffic of the weights. Tokens come TMax at a time, the remainder
// with smaller T.
// Header-only templates, instantiated only with each ISA file's own kernel types (in an
// anonymous namespace), so no instantiation is shared between files built with different flags.
#pragma once

#include <algorithm>
#include <cstdint>

namespace qllm::x86 {

// Activation bytes a token block may occupy: most of a 32-48 KiB L1d, leaving room for the
// weight rows of the current tile.
inline constexpr int64_t kTokenBlockBytes = 24 << 10;

template <int R, int TMax, class K>
inline void tile_tokens(const K& k, int64_t t_begin, int64_t t_end, int64_t o) {
  static_assert(TMax <= 4, "remainders below are 3, 2 and 1 tokens");
  int64_t t = t_begin;
  for (; t + TMax <= t_end; t += TMax) k.template tile<R, TMax>(o, t);
  const int64_t rest = t_end - t;
  if constexpr (TMax > 3)
    if (rest == 3) k.template tile<R, 3>(o, t);
  if constexpr (TMax > 2)
    if (rest == 2) k.template tile<R, 2>(o, t);
  if constexpr (TMax > 1)
    if (rest == 1) k.template tile<R, 1>(o, t);
}

template <int R, int TMax, class K>
inline void tile_rows(const K& k, int64_t n_tok, int64_t o_begin, int64_t o_end) {
  const int64_t per_token = K::kActBytes * k.w.n_in;
  const int64_t block = std::max<int64_t>(TMax, kTokenBlockBytes / per_token / TMax * TMax);
  for (int64_t t0 = 0; t0 < n_tok; t0 += block) {
    const int64_t t1 = std::min(n_tok, t0 + block);
    int64_t o = o_begin;
    for (; o + R <= o_end; o += R) tile_tokens<R, TMax>(k, t0, t1, o);
    for (; o < o_end; ++o) tile_tokens<1, TMax>(k, t0, t1, o);
  }
}

}  // namespace qllm::x86
