// Load-time repacking of QInt4/QInt2 weights into the layout the CPU kernels stream.
//
// quanto's planar packing (qtensor.h) puts the two nibbles of a byte in groups that are
// n_groups/2 rows apart, so a kernel reading one output row would touch two distant places.
// Layout::RowChunked keeps each output row contiguous:
//   row o = groups g = 0 .. n_in/G-1 in order; each group padded to Gp weights
//     (Gp = G when G % 32 == 0, else round_up(G, 64), which quanto only produces for one
//      group per row, G == n_in), stored as Gp/64 full chunks of 64 weights, then one half
//      chunk of 32 weights if Gp % 64 == 32.
//   A chunk of C weights (C = 64 or 32) is C*bits/8 bytes; byte k, bit field f (bits*f ..)
//   holds q[f * nb + k], nb = C*bits/8. So one load and a shift per field gives the
//   weights in natural order (4-bit: low nibbles = first half, high nibbles = second half).
//   Padding weights are 0.
// Layout::Interleaved16 holds the same rows, 16 to a tile, interleaved 4 bytes at a time:
//   bytes [4j, 4j+4) of row o sit at tile (o / 16), word j * 16 + o % 16; n_out is padded to
//   whole tiles with zero rows. One 64-byte vector then holds 4 bytes of each of 16 rows, so
//   vpdpbusd / vpdpwssd sum 16 rows at once, lane by lane, and a block's scales, shifts and
//   conversions are one vector operation per 16 rows instead of one per row (the AVX-512
//   kernels; the row count of a tile matches their 16 lanes).
// Scales and shifts stay in QTensor::scale/shift, indexed by group as before.
#pragma once

#include <cstdint>

#include "quant/qtensor.h"

namespace qllm {

// Geometry of the RowChunked layout of `w` (QInt4/QInt2).
struct ChunkGeometry {
  int bits = 0;
  int64_t group_size = 0;      // G
  int64_t group_padded = 0;    // Gp
  int64_t groups_per_row = 0;  // n_in / G
  int64_t row_bytes = 0;       // groups_per_row * Gp * bits / 8
};
ChunkGeometry chunk_geometry(const QTensor& w);

inline constexpr int64_t kTileRows = 16;  // rows of an Interleaved16 tile

// True when `w` can be repacked: QInt4/QInt2 with G % 32 == 0 or G == n_in.
bool can_chunk(const QTensor& w);

bool is_chunked(Layout l);  // RowChunked or Interleaved16

// Value q (0 .. 2^bits-1) of element (o, i) of a tensor in either chunked layout.
int chunked_value(const QTensor& w, const ChunkGeometry& geo, int64_t o, int64_t i);

// Repacks a QuantoPlanar QInt4/QInt2 tensor into `layout` (into w.owned; data points there).
// A no-op for other qtypes, for tensors already repacked, for layout QuantoPlanar and for
// group sizes the chunked layouts cannot hold (those keep using the reference kernel).
void prepare_for_kernels(QTensor& w, Layout layout);
// The same, into the layout the active kernels read (kernel_layout, dispatch.h). Call once
// after loading.
void prepare_for_kernels(QTensor& w);

}  // namespace qllm
