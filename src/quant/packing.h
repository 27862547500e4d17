// quanto's planar packing of 2- and 4-bit values (tensor/packed.py, library/unpack.py).
//
// The unpacked tensor Q has n_rows rows of `cols` values in [0, 2^bits). It is packed along the
// rows into rows_packed = ceil(n_rows / (8/bits)) rows of bytes: bit field k (bits*k .. bits*k +
// bits-1) of packed[p][j] holds Q[p + k*rows_packed][j]. So for 4 bits the low nibbles are the
// first half of the rows and the high nibbles the second half; a missing last row packs as 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qllm {

inline int64_t packed_rows(int64_t n_rows, int bits) {
  const int64_t per_byte = 8 / bits;
  return (n_rows + per_byte - 1) / per_byte;
}

// q: [n_rows, cols] values < 2^bits; out: [packed_rows(n_rows, bits), cols].
void pack_planar(const uint8_t* q, int64_t n_rows, int64_t cols, int bits, uint8_t* out);
// Inverse of pack_planar: out [n_rows, cols].
void unpack_planar(const uint8_t* packed, int64_t n_rows, int64_t cols, int bits, uint8_t* out);

}  // namespace qllm
