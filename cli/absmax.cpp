// qllm absmax: the textbook absmax INT8 quantization of one tensor, shown step by step.
//
// Per tensor: scale = 127 / max|X|, q = round(X * scale) (half to even, within [-127, 127]),
// X' = q / scale. With --per-channel each row r gets its own scale_r = 127 / max|X_r|, as
// quanto's qint8 does per output channel (it stores the inverse, max|X_r| / 127). An all-zero
// tensor or row gets scale 0 and q = 0 (no division by zero). Prints the first rows of X, q and
// X', then max |X - X'|, RMSE and SQNR = 10 log10(sum X^2 / sum (X - X')^2) in dB.
#include <cmath>
#include <cstdio>
#include <memory>

#include "command.h"
#include "format/safetensors.h"
#include "quant/quantizer.h"
#include "util/error.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string model, tensor;
  bool per_channel = false;
  int64_t rows = 4, cols = 8;
};

void print_rows(const char* title, const std::vector<float>& v, int64_t n_rows, int64_t n_cols, int64_t show_rows,
                int64_t show_cols, bool integers) {
  std::printf("%s:\n", title);
  for (int64_t r = 0; r < std::min(n_rows, show_rows); ++r) {
    std::printf("  [");
    for (int64_t c = 0; c < std::min(n_cols, show_cols); ++c) {
      const float x = v[r * n_cols + c];
      if (integers) std::printf("%s%5d", c ? " " : "", static_cast<int>(x));
      else std::printf("%s% .5f", c ? " " : "", x);
    }
    std::printf("%s]\n", n_cols > show_cols ? " ..." : "");
  }
  if (n_rows > show_rows) std::printf("  ... (%lld rows)\n", static_cast<long long>(n_rows));
}

Command kCmd{"absmax", "Show absmax INT8 quantization of one tensor, step by step", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("model", o->model, "Model directory or .safetensors file")->required();
  app.add_option("tensor", o->tensor, "Tensor name, e.g. model.layers.0.mlp.up_proj.weight")->required();
  app.add_flag("--per-channel", o->per_channel, "One scale per row instead of one per tensor");
  app.add_option("--rows", o->rows, "Rows to print (default 4)")->check(CLI::NonNegativeNumber);
  app.add_option("--cols", o->cols, "Columns to print (default 8)")->check(CLI::PositiveNumber);
  return std::function<int()>([o] {
    const TensorSet ts = TensorSet::open(o->model);
    const TensorDesc* d = ts.find(o->tensor);
    if (!d) fail(o->model, "tensor '{}': missing", o->tensor);
    const TensorRef t = ts.get(o->tensor);
    if (!dtype_info(t.dtype()).is_float)
      fail(o->model, "tensor '{}': dtype {} is not a float type", o->tensor, dtype_name(t.dtype()));
    if (t.shape().empty() || t.shape().size() > 2 || t.numel() == 0)
      fail(o->model, "tensor '{}': expected a non-empty 1-D or 2-D tensor", o->tensor);
    const int64_t n_rows = t.shape().size() == 2 ? t.shape()[0] : 1;
    const int64_t n_cols = t.shape().back();
    const std::vector<float> x = t.to_f32();
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!std::isfinite(x[i]))
        fail(o->model, "tensor '{}': non-finite value {} at index {}", o->tensor, x[i], i);

    // scale = 127 / absmax, per tensor or per row.
    std::vector<float> scale(static_cast<std::size_t>(o->per_channel ? n_rows : 1));
    for (int64_t r = 0; r < n_rows; ++r) {
      float m = 0;
      for (int64_t c = 0; c < n_cols; ++c) m = std::max(m, std::fabs(x[r * n_cols + c]));
      float& s = scale[o->per_channel ? r : 0];
      s = o->per_channel ? (m > 0 ? 127.0f / m : 0.0f) : std::max(s, m);
    }
    if (!o->per_channel) scale[0] = scale[0] > 0 ? 127.0f / scale[0] : 0.0f;
    std::vector<float> q(x.size()), deq(x.size());
    QuantError err;
    for (int64_t r = 0; r < n_rows; ++r) {
      const float s = scale[o->per_channel ? r : 0];
      for (int64_t c = 0; c < n_cols; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * n_cols + c);
        q[i] = std::clamp(std::nearbyint(x[i] * s), -127.0f, 127.0f);
        deq[i] = s > 0 ? q[i] / s : 0.0f;
        const double e = static_cast<double>(deq[i]) - x[i];
        err.sum_sq_w += static_cast<double>(x[i]) * x[i];
        err.sum_sq_err += e * e;
        err.max_abs = std::max(err.max_abs, std::fabs(e));
        err.n += 1;
      }
    }

    std::printf("tensor %s: %s [%lld, %lld], absmax INT8 %s\n", o->tensor.c_str(),
                std::string(dtype_name(t.dtype())).c_str(), static_cast<long long>(n_rows),
                static_cast<long long>(n_cols), o->per_channel ? "per channel (row)" : "per tensor");
    if (o->per_channel) {
      std::printf("scales (127 / max|row|):\n");
      for (int64_t r = 0; r < std::min(n_rows, o->rows); ++r)
        std::printf("  row %lld: %.6g\n", static_cast<long long>(r), scale[r]);
    } else {
      std::printf("scale = 127 / max|X| = %.6g\n", scale[0]);
    }
    print_rows("original X", x, n_rows, n_cols, o->rows, o->cols, false);
    print_rows("INT8 q = round(X * scale)", q, n_rows, n_cols, o->rows, o->cols, true);
    print_rows("dequantized X' = q / scale", deq, n_rows, n_cols, o->rows, o->cols, false);
    const double sqnr = err.sqnr_db();
    std::printf("max |X - X'| = %.6g\nRMSE = %.6g\nSQNR = %s dB\n", err.max_abs, err.rmse(),
                std::isinf(sqnr) ? "inf" : fmt::format("{:.2f}", sqnr).c_str());
    return 0;
  });
}};

}  // namespace
}  // namespace qllm::cli
