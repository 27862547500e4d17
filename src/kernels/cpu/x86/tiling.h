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

#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/prepare.h"

namespace qllm::x86 {

// A tile reads R weight rows side by side, and the hardware prefetcher follows R interleaved
// streams poorly when rows are short: one core reached 7 GB/s on 4864x896 int8 rows, 12-13 GB/s
// on long ones. Each kernel therefore prefetches kPrefetchDistance ahead, once per 64 bytes it
// reads of every row (RowPrefetch). On whole-model decode 16 KiB beat 4 KiB by 5-25%
// (Qwen2-0.5B and GPT-2, int8 and int4) and 2 KiB lost 15%. Prefetches never fault, so reading
// past the end of a tensor is harmless.
inline constexpr int64_t kPrefetchDistance = 16 << 10;
inline void prefetch_ahead(const void* p) {
  _mm_prefetch(static_cast<const char*>(p) + kPrefetchDistance, _MM_HINT_T0);
}

// The prefetches of a tile of R rows that lie back to back (row r at tile + r * row_bytes):
// at(done) prefetches ahead of each row, `done` bytes into the rows; call it at least once per
// 64 bytes of a row.
// Where the tile spans no more than the distance, its rows are one stream, prefetched in
// address order (R lines a call): 4864x896 int8 decode on Zen 1 read 8.2-8.4 GB/s on one core
// and 12.2-13.3 on two with per-row prefetches, 9.8-10.0 and 15.4-15.9 in address order, and
// whole-model int8 decode gained 12-27% (bench/README). Longer rows are prefetched each
// on its own, so the lead never falls behind a row's start. Both are p + done * step + r * gap,
// chosen once per tile: a branch in the loop cost GCC its register allocation there.
template <int R>
class RowPrefetch {
 public:
  RowPrefetch(const void* tile, int64_t row_bytes)
      : p_(static_cast<const char*>(tile) + kPrefetchDistance),
        step_(R * row_bytes <= kPrefetchDistance ? R : 1),
        gap_(R * row_bytes <= kPrefetchDistance ? 64 : row_bytes) {}
  void at(int64_t done) const {
    const char* q = p_ + done * step_;
    for (int r = 0; r < R; ++r) _mm_prefetch(q + r * gap_, _MM_HINT_T0);
  }

 private:
  const char* p_;
  int64_t step_, gap_;
};

// Activation bytes a token block may occupy: most of a 32-48 KiB L1d, leaving room for the
// weight rows of the current tile.
inline constexpr int64_t kTokenBlockBytes = 24 << 10;

// The tokens left after whole tiles of TMax, fewer than TMax: one tile of exactly that many.
template <int R, int T, class K>
inline void tile_rest(const K& k, int64_t rest, int64_t o, int64_t t) {
  if constexpr (T > 0) {
    if (rest == T) return k.template tile<R, T>(o, t);
    tile_rest<R, T - 1>(k, rest, o, t);
  }
}

template <int R, int TMax, class K>
inline void tile_tokens(const K& k, int64_t t_begin, int64_t t_end, int64_t o) {
  int64_t t = t_begin;
  for (; t + TMax <= t_end; t += TMax) k.template tile<R, TMax>(o, t);
  tile_rest<R, TMax - 1>(k, t_end - t, o, t);
}

// Tokens per block: a multiple of TMax whose activations fit kTokenBlockBytes.
template <int TMax, class K>
inline int64_t token_block(const K& k) {
  const int64_t per_token = K::kActBytes * k.w.n_in;
  return std::max<int64_t>(TMax, kTokenBlockBytes / per_token / TMax * TMax);
}

template <int R, int TMax, class K>
inline void tile_rows(const K& k, int64_t n_tok, int64_t o_begin, int64_t o_end) {
  const int64_t block = token_block<TMax>(k);
  for (int64_t t0 = 0; t0 < n_tok; t0 += block) {
    const int64_t t1 = std::min(n_tok, t0 + block);
    int64_t o = o_begin;
    for (; o + R <= o_end; o += R) tile_tokens<R, TMax>(k, t0, t1, o);
    for (; o < o_end; ++o) tile_tokens<1, TMax>(k, t0, t1, o);
  }
}

// Decode (one token) over short rows: R rows per tile, one from each of R equal parts of
// [o_begin, o_end) (row o + r * part: the kernel's row_step), so that each of the tile's R
// streams reads consecutive rows while the tile still loads the activations once for R rows.
// Tiles of R consecutive rows 1-2 KiB long made R short, interleaved streams that the hardware
// prefetchers followed poorly (rows_int8_fine, matmul_fine_avx2.cpp). A part must span the
// prefetch distance, so that RowPrefetch prefetches each row on its own; smaller ranges run as
// tiles of consecutive rows.
template <int R, class K>
inline void tile_rows_split(const K& k, int64_t row_bytes, int64_t o_begin, int64_t o_end) {
  const int64_t part = (o_end - o_begin) / R;
  if (part * row_bytes < kPrefetchDistance) return tile_rows<R, 1>(k, 1, o_begin, o_end);
  K split = k;
  split.row_step = part;
  for (int64_t o = o_begin; o < o_begin + part; ++o) split.template tile<R, 1>(o, 0);
  for (int64_t o = o_begin + R * part; o < o_end; ++o) k.template tile<1, 1>(o, 0);  // the last few
}

// For kernels whose tile<R, T> always covers the R = kTileRows rows of an Interleaved16 tile
// (prepare.h), the last one partly padding: o_begin is a multiple of kTileRows (matmul.cpp).
template <int TMax, class K>
inline void tile_row_tiles(const K& k, int64_t n_tok, int64_t o_begin, int64_t o_end) {
  constexpr int R = kTileRows;
  const int64_t block = token_block<TMax>(k);
  for (int64_t t0 = 0; t0 < n_tok; t0 += block) {
    const int64_t t1 = std::min(n_tok, t0 + block);
    for (int64_t o = o_begin; o < o_end; o += R) tile_tokens<R, TMax>(k, t0, t1, o);
  }
}

}  // namespace qllm::x86
