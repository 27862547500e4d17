// Repacking for the CUDA kernels; see gpu_matrix.h for the layout and qtensor.h / prepare.h for
// the two source layouts of QInt4/QInt2.
#include "kernels/cuda/gpu_layout.h"

#include <cstring>

#include "format/convert.h"
#include "kernels/cpu/prepare.h"
#include "util/thread_pool.h"

namespace qllm::cuda {
namespace {

// Element size of float types, 1 for the byte types.
int64_t elem_bytes(QType q) {
  switch (q) {
    case QType::F32: return 4;
    case QType::F16:
    case QType::BF16: return 2;
    default: return 1;
  }
}

// q value (0 .. 2^bits-1) of weight (o, i) of a QInt4/QInt2 tensor in either source layout.
int packed_value(const QTensor& w, const ChunkGeometry& geo, int64_t o, int64_t i) {
  if (is_chunked(w.layout)) return chunked_value(w, geo, o, i);
  const int bits = geo.bits;
  const int64_t per_byte = 8 / bits;
  const int64_t rows_packed = (w.n_groups() + per_byte - 1) / per_byte;
  const int64_t g = o * (w.n_in / w.group_size) + i / w.group_size;
  const auto byte = static_cast<uint8_t>(w.data[(g % rows_packed) * w.group_size + i % w.group_size]);
  return (byte >> (bits * (g / rows_packed))) & ((1 << bits) - 1);
}

}  // namespace

bool gpu_supports(const QTensor& w) {
  if (w.qtype != QType::QInt4 && w.qtype != QType::QInt2) return true;
  if (w.group_size <= 0 || w.n_in % w.group_size != 0) return false;
  return w.group_size % 32 == 0 || w.group_size == w.n_in;
}

GpuLayout gpu_layout(const QTensor& w) {
  GpuLayout l;
  l.qtype = w.qtype;
  l.n_out = w.n_out;
  l.n_in = w.n_in;
  l.ld = gpu_ld(w.n_in);
  l.group_size = w.group_size;
  const int64_t rb = gpu_row_bytes(w.qtype, l.ld);
  l.data.assign(static_cast<std::size_t>(rb * w.n_out), std::byte{0});
  l.scale = w.scale;
  l.shift = w.shift;
  auto* dst = reinterpret_cast<uint8_t*>(l.data.data());
  const auto* src = reinterpret_cast<const uint8_t*>(w.data);
  const int64_t es = elem_bytes(w.qtype);
  const bool packed = w.qtype == QType::QInt4 || w.qtype == QType::QInt2;
  const ChunkGeometry geo = packed ? chunk_geometry(w) : ChunkGeometry{};
  ThreadPool::global().parallel_for(w.n_out, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      uint8_t* row = dst + o * rb;
      if (packed) {
        const int bits = geo.bits, per_byte = 8 / bits;
        for (int64_t i = 0; i < w.n_in; ++i)
          row[i / per_byte] |= static_cast<uint8_t>(packed_value(w, geo, o, i) << (bits * (i % per_byte)));
      } else if (w.transposed) {
        for (int64_t i = 0; i < w.n_in; ++i)
          std::memcpy(row + i * es, src + (i * w.n_out + o) * es, static_cast<std::size_t>(es));
      } else {
        std::memcpy(row, src + o * w.n_in * es, static_cast<std::size_t>(w.n_in * es));
      }
    }
  });
  return l;
}

float gpu_layout_value(const GpuLayout& l, int64_t o, int64_t i) {
  const auto* row = reinterpret_cast<const uint8_t*>(l.data.data()) + o * gpu_row_bytes(l.qtype, l.ld);
  switch (l.qtype) {
    case QType::F32: {
      float v;
      std::memcpy(&v, row + 4 * i, 4);
      return v;
    }
    case QType::F16:
    case QType::BF16: {
      uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      return l.qtype == QType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    case QType::QInt8: return l.scale[o] * static_cast<float>(static_cast<int8_t>(row[i]));
    case QType::QFloat8: return l.scale[o] * f8e4m3_to_f32(row[i]);
    case QType::QInt4:
    case QType::QInt2: {
      const int bits = qtype_info(l.qtype).bits, per_byte = 8 / bits;
      const int q = (row[i / per_byte] >> (bits * (i % per_byte))) & ((1 << bits) - 1);
      const int64_t g = o * (l.n_in / l.group_size) + i / l.group_size;
      return l.scale[g] * static_cast<float>(q) - l.shift[g];
    }
  }
  return 0.0f;
}

}  // namespace qllm::cuda
