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

// True when `w` can be repacked: QInt4/QInt2 with G % 32 == 0 or G == n_in.
bool can_chunk(const QTensor& w);

// Value q (0 .. 2^bits-1) of element (o, i) of a RowChunked tensor.
int chunked_value(const QTensor& w, const ChunkGeometry& geo, int64_t o, int64_t i);

// Repacks QInt4/QInt2 tensors from QuantoPlanar into RowChunked (into w.owned, data points
// there); a no-op for other qtypes, for tensors already repacked and for group sizes the
// layout cannot hold (those keep using the reference kernel). Call once after loading.
void prepare_for_kernels(QTensor& w);

}  // namespace qllm
