// GpuMatrix: a weight matrix W [n_out, n_in] resident on the GPU, in the layout the CUDA
// kernels stream (written by gpu_layout(), gpu_layout.h). Plain C++: host code and kernels share it.
//
// Every stored row holds `ld` = round_up(n_in, kGpuRowAlign) weights, so each row starts on a
// 16-byte boundary and is a whole number of 16-byte chunks; padding weights are 0. Activation
// rows on the GPU are padded the same way with zeros, so kernels read whole chunks without
// bounds checks and padding contributes 0 to every dot product.
//   F32/F16/BF16    [n_out, ld] elements (GPT-2 Conv1D weights are transposed at upload)
//   QInt8/QFloat8   [n_out, ld] bytes;  W = scale[o] * q
//   QInt4           [n_out, ld/2] bytes: weight i in byte i/2, low nibble first
//   QInt2           [n_out, ld/4] bytes: weight i in byte i/4, bits 2*(i%4)
//                   W = scale[g] * q - shift[g], g = o * (n_in/G) + min(i, n_in-1) / G
// For QInt4/QInt2, G % 32 == 0 or G == n_in (quanto's rule gives nothing else), so each run of
// 32 weights starting at a multiple of 32 lies in one group.
#pragma once

#include <cstdint>

#include "quant/qtype.h"

// Callable from host and device code.
#ifdef __CUDACC__
#define QLLM_HD __host__ __device__
#else
#define QLLM_HD
#endif

namespace qllm::cuda {

inline constexpr int64_t kGpuRowAlign = 64;

QLLM_HD constexpr int64_t gpu_ld(int64_t n) { return (n + kGpuRowAlign - 1) / kGpuRowAlign * kGpuRowAlign; }

// Bytes of one stored row of `ld` weights.
QLLM_HD constexpr int64_t gpu_row_bytes(QType q, int64_t ld) {
  switch (q) {
    case QType::F32: return ld * 4;
    case QType::F16:
    case QType::BF16: return ld * 2;
    case QType::QInt8:
    case QType::QFloat8: return ld;
    case QType::QInt4: return ld / 2;
    case QType::QInt2: return ld / 4;
  }
  return 0;
}

struct GpuMatrix {
  QType qtype = QType::F32;
  int64_t n_out = 0, n_in = 0;
  int64_t ld = 0;                 // gpu_ld(n_in)
  const void* data = nullptr;     // device, [n_out, gpu_row_bytes(qtype, ld)] bytes
  const float* scale = nullptr;   // device; QInt8/QFloat8 [n_out]; QInt4/QInt2 [n_out * n_in/G]
  const float* shift = nullptr;   // device; QInt4/QInt2 [n_out * n_in/G]
  int64_t group_size = 0;         // QInt4/QInt2
  const float* bias = nullptr;    // device [n_out], or null

  QLLM_HD int64_t row_bytes() const { return gpu_row_bytes(qtype, ld); }
  QLLM_HD int64_t groups_per_row() const { return group_size ? n_in / group_size : 0; }
};

}  // namespace qllm::cuda
