#include "quant/packing.h"

#include <cstring>

namespace qllm {

void pack_planar(const uint8_t* q, int64_t n_rows, int64_t cols, int bits, uint8_t* out) {
  const int64_t rows_packed = packed_rows(n_rows, bits);
  const int per_byte = 8 / bits;
  std::memset(out, 0, static_cast<std::size_t>(rows_packed * cols));
  for (int k = 0; k < per_byte; ++k)
    for (int64_t p = 0; p < rows_packed; ++p) {
      const int64_t r = p + k * rows_packed;
      if (r >= n_rows) break;
      for (int64_t j = 0; j < cols; ++j)
        out[p * cols + j] |= static_cast<uint8_t>(q[r * cols + j] << (bits * k));
    }
}

void unpack_planar(const uint8_t* packed, int64_t n_rows, int64_t cols, int bits, uint8_t* out) {
  const int64_t rows_packed = packed_rows(n_rows, bits);
  const int mask = (1 << bits) - 1;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t p = r % rows_packed, k = r / rows_packed;
    for (int64_t j = 0; j < cols; ++j)
      out[r * cols + j] = static_cast<uint8_t>((packed[p * cols + j] >> (bits * k)) & mask);
  }
}

}  // namespace qllm
