#include "kernels/cpu/prepare.h"

#include <cstring>
#include <vector>

namespace qllm {
namespace {

// Byte offset and bit shift of weight j of group gi (within its row) in RowChunked layout.
void chunk_position(const ChunkGeometry& geo, int64_t gi, int64_t j, int64_t* byte, int* shift) {
  const int64_t c = j / 64;
  const int64_t full = geo.group_padded / 64;
  const int64_t chunk_weights = c < full ? 64 : 32;
  const int64_t nb = chunk_weights * geo.bits / 8;
  const int64_t jj = j - c * 64;
  *byte = gi * geo.group_padded * geo.bits / 8 + c * 64 * geo.bits / 8 + jj % nb;
  *shift = static_cast<int>(jj / nb) * geo.bits;
}

}  // namespace

ChunkGeometry chunk_geometry(const QTensor& w) {
  ChunkGeometry geo;
  geo.bits = qtype_info(w.qtype).bits;
  geo.group_size = w.group_size;
  geo.group_padded = w.group_size % 32 == 0 ? w.group_size : (w.group_size + 63) / 64 * 64;
  geo.groups_per_row = w.group_size ? w.n_in / w.group_size : 0;
  geo.row_bytes = geo.groups_per_row * geo.group_padded * geo.bits / 8;
  return geo;
}

bool can_chunk(const QTensor& w) {
  if (w.qtype != QType::QInt4 && w.qtype != QType::QInt2) return false;
  if (w.group_size <= 0 || w.n_in % w.group_size != 0) return false;
  return w.group_size % 32 == 0 || w.group_size == w.n_in;
}

int chunked_value(const QTensor& w, const ChunkGeometry& geo, int64_t o, int64_t i) {
  int64_t byte;
  int shift;
  chunk_position(geo, i / geo.group_size, i % geo.group_size, &byte, &shift);
  const auto b = static_cast<uint8_t>(w.data[o * geo.row_bytes + byte]);
  return (b >> shift) & ((1 << geo.bits) - 1);
}

void prepare_for_kernels(QTensor& w) {
  if (w.layout != Layout::QuantoPlanar || !can_chunk(w) || w.data == nullptr) return;
  const ChunkGeometry geo = chunk_geometry(w);
  const int bits = geo.bits, per_byte = 8 / bits, mask = (1 << bits) - 1;
  const int64_t rows_packed = (w.n_groups() + per_byte - 1) / per_byte;
  std::vector<std::byte> out(static_cast<std::size_t>(geo.row_bytes * w.n_out));
  std::vector<uint8_t> q(static_cast<std::size_t>(geo.group_padded));
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  const auto* src = reinterpret_cast<const uint8_t*>(w.data);
  for (int64_t g = 0; g < w.n_groups(); ++g) {
    // Unpack group g (planar row p, bit field k), then pack it chunk by chunk.
    const uint8_t* s = src + (g % rows_packed) * w.group_size;
    const int shift = bits * static_cast<int>(g / rows_packed);
    for (int64_t j = 0; j < w.group_size; ++j) q[j] = static_cast<uint8_t>((s[j] >> shift) & mask);
    uint8_t* d = dst + g * geo.group_padded * bits / 8;
    for (int64_t c = 0; c < geo.group_padded; c += 64) {
      const int64_t chunk_weights = geo.group_padded - c >= 64 ? 64 : 32;
      const int64_t nb = chunk_weights * bits / 8;
      for (int64_t k = 0; k < nb; ++k) {
        int v = 0;
        for (int f = 0; f < per_byte; ++f) v |= q[c + f * nb + k] << (f * bits);
        d[k] = static_cast<uint8_t>(v);
      }
      d += nb;
    }
  }
  w.owned = std::move(out);
  w.data = w.owned.data();
  w.layout = Layout::RowChunked;
}

}  // namespace qllm
