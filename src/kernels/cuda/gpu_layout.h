// Host-side conversion of a QTensor (any QType, either QInt4/QInt2 layout) into the GPU layout
// of gpu_matrix.h. Plain C++ (no CUDA), so the layout is tested on machines without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/gpu_matrix.h"
#include "quant/qtensor.h"

namespace qllm::cuda {

struct GpuLayout {
  QType qtype = QType::F32;
  int64_t n_out = 0, n_in = 0, ld = 0, group_size = 0;
  std::vector<std::byte> data;  // [n_out, gpu_row_bytes(qtype, ld)]
  std::vector<float> scale, shift;
};

// True when the CUDA kernels can run `w` (group sizes: G % 32 == 0 or G == n_in).
bool gpu_supports(const QTensor& w);

// Repacks `w`. Rows are converted in parallel on the global thread pool.
GpuLayout gpu_layout(const QTensor& w);

// Value of weight (o, i) of a GpuLayout, dequantized; tests compare it with ref::dequantize_row.
float gpu_layout_value(const GpuLayout& l, int64_t o, int64_t i);

}  // namespace qllm::cuda
