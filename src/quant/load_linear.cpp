// Linear layers from a checkpoint: float weights, or optimum-quanto's serialized QTensors.
//
// quanto keys of a module P (QUANTO_FORMAT.md 1.3), weight W [n_out, n_in]:
//   qint8 / qfloat8   P.weight._data        I8 / F8_E4M3 [n_out, n_in]
//                     P.weight._scale       float [n_out, 1]
//   qint4 / qint2     P.weight._data._data  U8 [ceil(n_groups / (8/bits)), G]   (planar packing)
//                     P.weight._scale       float [n_groups, 1]
//                     P.weight._shift       float [n_groups, 1], or U8 integer zero-points
//   all               P.bias (float, never quantized), P.input_scale / P.output_scale (ignored:
//                     qllm quantizes weights only)
// The group size G is not stored anywhere; quanto recomputes it from n_in (quanto_group_size()).
// We take it from the shapes instead (G = n_out*n_in / n_groups), which gives quanto's value
// for quanto's files and also reads files written with `qllm quantize --group-size`.
// GPT-2 Conv1D modules are stored quantized in the Linear [n_out, n_in] convention.
#include "quant/load_linear.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "kernels/cpu/prepare.h"
#include "quant/packing.h"
#include "util/mmap.h"

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

bool check_dtype(const TensorRef& t, bool ok, std::string_view expected, std::vector<std::string>* problems) {
  if (ok) return true;
  problems->push_back(fmt::format("tensor '{}': unsupported dtype {} (expected {})", t.name(),
                                  dtype_name(t.dtype()), expected));
  return false;
}

// Widens a scale-like tensor, checking that every value is finite.
bool load_scales(const TensorRef& t, std::vector<float>* out, std::vector<std::string>* problems) {
  *out = t.to_f32();
  for (std::size_t i = 0; i < out->size(); ++i)
    if (!std::isfinite((*out)[i])) {
      problems->push_back(fmt::format("tensor '{}': non-finite value {} at index {}", t.name(), (*out)[i], i));
      return false;
    }
  return true;
}

// The module's qtype according to quanto_qmap.json; a problem if it disagrees with the file.
bool check_qmap(const std::map<std::string, QType>* qmap, const std::string& module, QType found,
                std::vector<std::string>* problems) {
  if (!qmap) return true;
  auto it = qmap->find(module);
  if (it == qmap->end()) {
    problems->push_back(fmt::format("module '{}': quantized weights ({}) but no entry in quanto_qmap.json",
                                    module, qtype_info(found).quanto_name));
    return false;
  }
  if (it->second != found) {
    problems->push_back(fmt::format("module '{}': quanto_qmap.json says {} but the weights are {}", module,
                                    qtype_info(it->second).quanto_name, qtype_info(found).quanto_name));
    return false;
  }
  return true;
}

void load_qbytes(const TensorSet& ts, const std::map<std::string, QType>* qmap, const LinearSpec& spec,
                 Linear& l, std::vector<std::string>* problems) {
  const std::string base = spec.prefix + ".weight.";
  auto data = ts.get(base + "_data");
  const QType q = data.dtype() == DType::F8_E4M3 ? QType::QFloat8 : QType::QInt8;
  if (!check_dtype(data, data.dtype() == DType::I8 || data.dtype() == DType::F8_E4M3, "I8 or F8_E4M3", problems))
    return;
  if (!check_qmap(qmap, spec.prefix, q, problems)) return;
  if (!ts.contains(base + "_scale")) {
    problems->push_back(fmt::format("tensor '{}_scale': missing (expected [{}, 1])", base, spec.n_out));
    return;
  }
  auto scale = ts.get(base + "_scale");
  const bool ok_data = check_shape(data, {spec.n_out, spec.n_in}, problems);
  const bool ok_scale = check_shape(scale, {spec.n_out, 1}, problems) &&
                        check_dtype(scale, float_qtype(scale.dtype()).has_value(), "F32, F16 or BF16", problems);
  if (!ok_data || !ok_scale || !load_scales(scale, &l.w.scale, problems)) return;
  l.w.qtype = q;
  l.w.data = data.bytes.data();
  l.w.scale_dtype = scale.dtype();
}

void load_qbits(const TensorSet& ts, const std::map<std::string, QType>* qmap, const LinearSpec& spec,
                Linear& l, std::vector<std::string>* problems) {
  const std::string base = spec.prefix + ".weight.";
  auto data = ts.get(base + "_data._data");
  if (!check_dtype(data, data.dtype() == DType::U8, "U8", problems)) return;
  for (const char* part : {"_scale", "_shift"})
    if (!ts.contains(base + part)) {
      problems->push_back(fmt::format("tensor '{}{}': missing (expected [n_groups, 1])", base, part));
      return;
    }
  auto scale = ts.get(base + "_scale");
  auto shift = ts.get(base + "_shift");
  if (!check_dtype(scale, float_qtype(scale.dtype()).has_value(), "F32, F16 or BF16", problems)) return;
  if (!check_dtype(shift, float_qtype(shift.dtype()).has_value() || shift.dtype() == DType::U8,
                   "F32, F16, BF16 or U8", problems))
    return;
  // The group count comes from the scales; it must split W into whole groups along n_in.
  const int64_t n = spec.n_out * spec.n_in;
  const auto& ss = scale.shape();
  if (ss.size() != 2 || ss[1] != 1 || ss[0] <= 0 || n % ss[0] != 0 || spec.n_in % (n / ss[0]) != 0) {
    problems->push_back(fmt::format(
        "tensor '{}': wrong shape (expected [n_groups, 1] with {} x {} weights in whole groups along "
        "the input, got [{}])",
        scale.name(), spec.n_out, spec.n_in, fmt::join(ss, ", ")));
    return;
  }
  const int64_t n_groups = ss[0], G = n / n_groups;
  if (!check_shape(shift, {n_groups, 1}, problems)) return;
  // Bits: from the qmap, else from the packed row count when that is unambiguous.
  std::optional<QType> q;
  if (qmap) {
    auto it = qmap->find(spec.prefix);
    if (it != qmap->end()) q = it->second;
  }
  if (!q) {
    const bool r4 = data.shape() == std::vector<int64_t>{packed_rows(n_groups, 4), G};
    const bool r2 = data.shape() == std::vector<int64_t>{packed_rows(n_groups, 2), G};
    if (r4 != r2) q = r4 ? QType::QInt4 : QType::QInt2;
  }
  if (!q || !qtype_info(*q).affine) {
    problems->push_back(fmt::format("tensor '{}': cannot tell qint4 from qint2 (quanto_qmap.json {})",
                                    data.name(), q ? "names another qtype" : "has no entry"));
    return;
  }
  if (!check_qmap(qmap, spec.prefix, *q, problems)) return;
  if (!check_shape(data, {packed_rows(n_groups, qtype_info(*q).bits), G}, problems)) return;
  if (!load_scales(scale, &l.w.scale, problems)) return;
  if (shift.dtype() == DType::U8) {
    // Integer zero-points: W = scale * (q - zp) = scale * q - scale * zp.
    auto zp = shift.to_f32();
    l.w.shift.resize(zp.size());
    for (std::size_t i = 0; i < zp.size(); ++i) l.w.shift[i] = l.w.scale[i] * zp[i];
  } else if (!load_scales(shift, &l.w.shift, problems)) {
    return;
  }
  l.w.qtype = *q;
  l.w.group_size = G;
  l.w.data = data.bytes.data();
  l.w.scale_dtype = scale.dtype();
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
  if (ts.contains(wname + "._data._data")) {
    load_qbits(ts, qmap, spec, l, problems);
  } else if (ts.contains(wname + "._data")) {
    load_qbytes(ts, qmap, spec, l, problems);
  } else if (ts.contains(wname)) {
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
    return l;
  } else {
    const bool quantized = qmap && qmap->count(spec.prefix);
    problems->push_back(fmt::format("tensor '{}': missing (expected [{}, {}])",
                                    quantized ? wname + "._data" : wname,
                                    spec.conv1d && !quantized ? spec.n_in : spec.n_out,
                                    spec.conv1d && !quantized ? spec.n_out : spec.n_in));
    return l;
  }
  if (l.w.data) {
    const std::span<const std::byte> stored{l.w.data, static_cast<std::size_t>(l.w.data_bytes())};
    prepare_for_kernels(l.w);
    // The repacked copy is what the kernels read; without this the planar bytes it was made
    // from would stay resident too (int4 peak RSS 1.4x the file instead of about 1x).
    if (l.w.data != stored.data()) release_pages(stored);
  }
  return l;
}

}  // namespace qllm
