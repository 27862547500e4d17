#include "kernels/cpu/prepare.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "util/thread_pool.h"

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

// Groups [g0, g1) from quanto's planar layout into RowChunked rows starting at dst. Group g
// is field g / rows_packed of planar row g % rows_packed (QUANTO_FORMAT: bit fields of one
// byte hold groups rows_packed apart). Weights past the group's end in a padded chunk are 0.
template <int Bits>
void repack_groups(const ChunkGeometry& geo, const uint8_t* src, int64_t n_groups, int64_t g0,
                   int64_t g1, uint8_t* dst) {
  constexpr int kFields = 8 / Bits;
  constexpr unsigned kMask = (1u << Bits) - 1;
  const int64_t gs = geo.group_size, gp = geo.group_padded;
  const int64_t rows_packed = (n_groups + kFields - 1) / kFields;
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* s = src + (g % rows_packed) * gs;
    const int shift = Bits * static_cast<int>(g / rows_packed);
    uint8_t* d = dst + (g - g0) * gp * Bits / 8;
    for (int64_t c = 0; c < gp; c += 64) {
      const int64_t nb = (gp - c >= 64 ? 64 : 32) * Bits / 8;  // bytes of this chunk
      const uint8_t* sc = s + c;
      if (c + kFields * nb <= gs) {  // every weight real: a loop the compiler vectorizes
        for (int64_t k = 0; k < nb; ++k) {
          unsigned v = 0;
          for (int f = 0; f < kFields; ++f) v |= ((sc[f * nb + k] >> shift) & kMask) << (f * Bits);
          d[k] = static_cast<uint8_t>(v);
        }
      } else {
        for (int64_t k = 0; k < nb; ++k) {
          unsigned v = 0;
          for (int f = 0; f < kFields; ++f)
            if (c + f * nb + k < gs) v |= ((sc[f * nb + k] >> shift) & kMask) << (f * Bits);
          d[k] = static_cast<uint8_t>(v);
        }
      }
      d += nb;
    }
  }
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

bool is_chunked(Layout l) { return l == Layout::RowChunked || l == Layout::Interleaved16; }

int chunked_value(const QTensor& w, const ChunkGeometry& geo, int64_t o, int64_t i) {
  int64_t byte;
  int shift;
  chunk_position(geo, i / geo.group_size, i % geo.group_size, &byte, &shift);
  const int64_t at = w.layout == Layout::Interleaved16
                         ? o / kTileRows * kTileRows * geo.row_bytes + byte / 4 * 4 * kTileRows +
                               o % kTileRows * 4 + byte % 4
                         : o * geo.row_bytes + byte;
  return (static_cast<uint8_t>(w.data[at]) >> shift) & ((1 << geo.bits) - 1);
}

void prepare_for_kernels(QTensor& w, Layout layout) {
  if (w.layout != Layout::QuantoPlanar || layout == Layout::QuantoPlanar || !can_chunk(w) ||
      w.data == nullptr)
    return;
  const ChunkGeometry geo = chunk_geometry(w);
  const int64_t rb = geo.row_bytes, n_groups = w.n_groups(), gpr = geo.groups_per_row;
  const bool tiled = layout == Layout::Interleaved16;
  const int64_t rows = tiled ? (w.n_out + kTileRows - 1) / kTileRows * kTileRows : w.n_out;
  HugePageBuffer out(static_cast<std::size_t>(rb * rows));  // zero: padding rows
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  const auto* src = reinterpret_cast<const uint8_t*>(w.data);
  auto repack = [&](int64_t g0, int64_t g1, uint8_t* to) {
    if (geo.bits == 4) repack_groups<4>(geo, src, n_groups, g0, g1, to);
    else repack_groups<2>(geo, src, n_groups, g0, g1, to);
  };
  // About 1 ns per weight in one thread: 0.5 s for Qwen2-0.5B, so it runs on every core.
  if (!tiled) {
    ThreadPool::global().parallel_for(n_groups, [&](int64_t g0, int64_t g1) {
      repack(g0, g1, dst + g0 * geo.group_padded * geo.bits / 8);
    });
  } else {
    // Each tile's rows are repacked into a scratch tile, whose [16 rows x rb/4] words are then
    // transposed into place.
    ThreadPool::global().parallel_for(rows / kTileRows, [&](int64_t t0, int64_t t1) {
      std::vector<uint32_t> rowwise(static_cast<std::size_t>(kTileRows * rb / 4));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o0 = t * kTileRows, n = std::min(kTileRows, w.n_out - o0);
        std::fill(rowwise.begin(), rowwise.end(), 0u);
        repack(o0 * gpr, (o0 + n) * gpr, reinterpret_cast<uint8_t*>(rowwise.data()));
        auto* tile = reinterpret_cast<uint32_t*>(dst + o0 * rb);
        for (int64_t l = 0; l < kTileRows; ++l)
          for (int64_t j = 0; j < rb / 4; ++j) tile[j * kTileRows + l] = rowwise[l * rb / 4 + j];
      }
    });
  }
  w.owned = std::move(out);
  w.data = w.owned.data();
  w.layout = layout;
}

void prepare_for_kernels(QTensor& w) { prepare_for_kernels(w, kernel_layout(active_kernels(), w)); }

}  // namespace qllm
