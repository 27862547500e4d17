// Register tiling shared by the x86 kernel files: a kernel object provides
// tile<R, T>(o, t0), computing R output rows for T tokens with R*T accumulators in registers.
// Rows are the outer loop so a tile of weights read once from memory serves every token
// (prefill); tokens come TMax at a time, the remainder with smaller T.
// Header-only templates, instantiated only with each ISA file's own kernel types (in an
// anonymous namespace), so no instantiation is shared between files built with different flags.
#pragma once

#include <cstdint>

namespace qllm::x86 {

template <int R, int TMax, class K>
inline void tile_tokens(const K& k, int64_t n_tok, int64_t o) {
  int64_t t = 0;
  for (; t + TMax <= n_tok; t += TMax) k.template tile<R, TMax>(o, t);
  const int64_t rest = n_tok - t;
  if constexpr (TMax > 3)
    if (rest == 3) k.template tile<R, 3>(o, t);
  if constexpr (TMax > 2)
    if (rest == 2) k.template tile<R, 2>(o, t);
  if constexpr (TMax > 1)
    if (rest == 1) k.template tile<R, 1>(o, t);
}

template <int R, int TMax, class K>
inline void tile_rows(const K& k, int64_t n_tok, int64_t o_begin, int64_t o_end) {
  int64_t o = o_begin;
  for (; o + R <= o_end; o += R) tile_tokens<R, TMax>(k, n_tok, o);
  for (; o < o_end; ++o) tile_tokens<1, TMax>(k, n_tok, o);
}

}  // namespace qllm::x86
