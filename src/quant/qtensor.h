// QTensor: a 2-D weight matrix W [n_out, n_in] (y = W x) in any QType, as kernels see it.
//
// The weight data is normally a view into the mmapped checkpoint, so resident memory tracks the
// quantized size. Layouts of `data`, by qtype (quanto's on-disk layouts, see QUANTO_FORMAT.md):
//   F32/F16/BF16  [n_out, n_in] elements; or [n_in, n_out] when `transposed` (GPT-2 Conv1D)
//   QInt8         int8 [n_out, n_in];          W = scale[o] * q
//   QFloat8       e4m3fn bytes [n_out, n_in];  W = scale[o] * fp8_to_f32(q)
//   QInt4/QInt2   uint8, quanto's planar packing of the grouped tensor Q [n_groups, group_size]
//                 (n_groups = n_out * n_in / group_size, group g = o * (n_in/group_size) + i/group_size):
//                 packed row p, bit field k holds Q[p + k * rows_packed], rows_packed = ceil(n_groups / (8/bits))
//                 W = scale[g] * q - shift[g]
//                 After kernels/cpu/prepare.h repacks it (`layout` RowChunked or Interleaved16),
//                 the same values are row-major in SIMD-friendly chunks; see prepare.h.
// Scales and shifts are small, so they are widened to f32 once at load time. `owned` holds data
// that had to be copied or repacked, in memory placed for 2 MiB pages (util/huge_pages.h);
// `data` then points into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/dtype.h"
#include "quant/qtype.h"
#include "util/huge_pages.h"

namespace qllm {

// Arrangement of QInt4/QInt2 `data`: as on disk, or repacked for the CPU kernels (prepare.h).
enum class Layout : uint8_t { QuantoPlanar, RowChunked, Interleaved16 };

struct QTensor {
  QType qtype = QType::F32;
  int64_t n_out = 0, n_in = 0;
  bool transposed = false;          // float types only
  const std::byte* data = nullptr;
  int64_t group_size = 0;           // QInt4/QInt2: weights per group along n_in
  Layout layout = Layout::QuantoPlanar;  // QInt4/QInt2 only
  std::vector<float> scale;         // QInt8/QFloat8: [n_out]; QInt4/QInt2: [n_groups]
  std::vector<float> shift;         // QInt4/QInt2: [n_groups]
  DType scale_dtype = DType::F32;   // dtype the scales were stored in (the model's dtype)
  HugePageBuffer owned;

  int64_t n_groups() const { return group_size ? n_out * n_in / group_size : 0; }
  // Bytes of weight data as stored (packed), without scales.
  uint64_t data_bytes() const;
  // Bytes of scales and shifts as stored on disk (in scale_dtype).
  uint64_t scale_bytes() const;
};

// A linear layer: y = W x + b.
struct Linear {
  QTensor w;
  std::vector<float> bias;  // [n_out], or empty
};

}  // namespace qllm
