// Reference (scalar) matmul for every QType and both QInt4/QInt2 layouts. Variants: none; this is the spec that the SIMD
// kernels in kernels/cpu/x86 are tested against (tests/kernels).
#include <cstring>
#include <vector>

#include "format/convert.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/prepare.h"

namespace qllm::ref {
namespace {

float load_float(QType q, const std::byte* base, int64_t index) {
  switch (q) {
    case QType::F32: {
      float v;
      std::memcpy(&v, base + 4 * index, 4);
      return v;
    }
    case QType::F16: {
      uint16_t h;
      std::memcpy(&h, base + 2 * index, 2);
      return f16_to_f32(h);
    }
    case QType::BF16: {
      uint16_t h;
      std::memcpy(&h, base + 2 * index, 2);
      return bf16_to_f32(h);
    }
    default: return 0.0f;
  }
}

// Value of grouped element (g, j) of a planar-packed QInt4/QInt2 tensor.
int unpack_planar(const QTensor& w, int64_t g, int64_t j) {
  const int bits = qtype_info(w.qtype).bits;
  const int64_t per_byte = 8 / bits;
  const int64_t rows_packed = (w.n_groups() + per_byte - 1) / per_byte;
  const int64_t p = g % rows_packed, k = g / rows_packed;
  const auto byte = static_cast<uint8_t>(w.data[p * w.group_size + j]);
  return (byte >> (bits * k)) & ((1 << bits) - 1);
}

}  // namespace

void dequantize_row(const QTensor& w, int64_t o, float* out) {
  const int64_t n_in = w.n_in;
  switch (w.qtype) {
    case QType::F32:
    case QType::F16:
    case QType::BF16:
      for (int64_t i = 0; i < n_in; ++i)
        out[i] = load_float(w.qtype, w.data, w.transposed ? i * w.n_out + o : o * n_in + i);
      return;
    case QType::QInt8:
      for (int64_t i = 0; i < n_in; ++i)
        out[i] = w.scale[o] * static_cast<float>(static_cast<int8_t>(w.data[o * n_in + i]));
      return;
    case QType::QFloat8:
      for (int64_t i = 0; i < n_in; ++i)
        out[i] = w.scale[o] * f8e4m3_to_f32(static_cast<uint8_t>(w.data[o * n_in + i]));
      return;
    case QType::QInt4:
    case QType::QInt2: {
      const int64_t groups_per_row = n_in / w.group_size;
      if (is_chunked(w.layout)) {
        const ChunkGeometry geo = chunk_geometry(w);
        for (int64_t i = 0; i < n_in; ++i) {
          const int64_t g = o * groups_per_row + i / w.group_size;
          out[i] = w.scale[g] * static_cast<float>(chunked_value(w, geo, o, i)) - w.shift[g];
        }
        return;
      }
      for (int64_t i = 0; i < n_in; ++i) {
        const int64_t g = o * groups_per_row + i / w.group_size;
        out[i] = w.scale[g] * static_cast<float>(unpack_planar(w, g, i % w.group_size)) - w.shift[g];
      }
      return;
    }
  }
}

void matmul_rows(const QTensor& w, const float* x, int64_t n_tok, float* y, int64_t o_begin,
                 int64_t o_end) {
  std::vector<float> row(static_cast<std::size_t>(w.n_in));
  for (int64_t o = o_begin; o < o_end; ++o) {
    dequantize_row(w, o, row.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* xt = x + t * w.n_in;
      float acc = 0.0f;
      for (int64_t i = 0; i < w.n_in; ++i) acc += row[i] * xt[i];
      y[t * w.n_out + o] = acc;
    }
  }
}

}  // namespace qllm::ref
