#include "kernels/cpu/matmul.h"

namespace qllm {

void matmul(const QTensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  pool.parallel_for(w.n_out, [&](int64_t b, int64_t e) { ref::matmul_rows(w, x, n_tok, y, b, e); }, 16);
}

void linear(const Linear& l, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul(l.w, x, n_tok, y, pool);
  if (l.bias.empty()) return;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = 0; o < l.w.n_out; ++o) y[t * l.w.n_out + o] += l.bias[o];
}

}  // namespace qllm
