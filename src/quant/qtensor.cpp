#include "quant/qtensor.h"

namespace qllm {

uint64_t QTensor::data_bytes() const {
  const uint64_t n = static_cast<uint64_t>(n_out) * static_cast<uint64_t>(n_in);
  switch (qtype) {
    case QType::F32: return n * 4;
    case QType::F16:
    case QType::BF16: return n * 2;
    case QType::QInt8:
    case QType::QFloat8: return n;
    case QType::QInt4: return static_cast<uint64_t>((n_groups() + 1) / 2) * group_size;
    case QType::QInt2: return static_cast<uint64_t>((n_groups() + 3) / 4) * group_size;
  }
  return 0;
}

uint64_t QTensor::scale_bytes() const {
  return (scale.size() + shift.size()) * dtype_size(scale_dtype);
}

}  // namespace qllm
