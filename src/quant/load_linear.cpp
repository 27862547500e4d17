#include "quant/load_linear.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace qllm {
namespace {

std::optional<QType> float_qtype(DType d) {
  switch (d) {
    case DType::F32: return QType::F32;
    case DType::F16: return QType::F16;
    case DType::BF16: return QType::BF16;
    default: return std::nullopt;
  }
}

bool check_shape(const TensorRef& t, std::vector<int64_t> expected, std::vector<std::string>* problems) {
  if (t.shape() == expected) return true;
  problems->push_back(fmt::format("tensor '{}': wrong shape (expected [{}], got [{}])", t.name(),
                                  fmt::join(expected, ", "), fmt::join(t.shape(), ", ")));
  return false;
}

}  // namespace

Linear load_linear(const TensorSet& ts, const std::map<std::string, QType>* qmap,
                   const LinearSpec& spec, std::vector<std::string>* problems) {
  Linear l;
  l.w.n_out = spec.n_out;
  l.w.n_in = spec.n_in;
  const std::string wname = spec.prefix + ".weight";
  if (spec.has_bias) {
    if (const auto* b = ts.find(spec.prefix + ".bias")) {
      auto ref = ts.get(b->name);
      if (check_shape(ref, {spec.n_out}, problems)) l.bias = ref.to_f32();
    } else {
      problems->push_back(fmt::format("tensor '{}.bias': missing (expected [{}])", spec.prefix, spec.n_out));
    }
  }
  if (!ts.contains(wname)) {
    problems->push_back(fmt::format("tensor '{}': missing (expected [{}, {}])", wname,
                                    spec.conv1d ? spec.n_in : spec.n_out,
                                    spec.conv1d ? spec.n_out : spec.n_in));
    return l;
  }
  auto ref = ts.get(wname);
  auto q = float_qtype(ref.dtype());
  if (!q) {
    problems->push_back(fmt::format("tensor '{}': unsupported weight dtype {} (expected F32, F16 or BF16)",
                                    wname, dtype_name(ref.dtype())));
    return l;
  }
  std::vector<int64_t> expected = spec.conv1d ? std::vector<int64_t>{spec.n_in, spec.n_out}
                                              : std::vector<int64_t>{spec.n_out, spec.n_in};
  if (!check_shape(ref, expected, problems)) return l;
  l.w.qtype = *q;
  l.w.transposed = spec.conv1d;
  l.w.data = ref.bytes.data();
  l.w.scale_dtype = ref.dtype();
  (void)qmap;
  return l;
}

}  // namespace qllm
