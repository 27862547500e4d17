#include "quant/calibrate.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "quant/packing.h"
#include "util/error.h"

namespace qllm {
namespace {

std::vector<float> load_rows(const WeightView& w) {
  std::vector<float> out(static_cast<size_t>(w.n_out * w.n_in));
  for (int64_t o = 0; o < w.n_out; ++o) w.load(o, 0, w.n_in, out.data() + o * w.n_in);
  return out;
}

void add_error(QuantError& e, float w, float dq) {
  const double d = double(dq) - double(w);
  e.sum_sq_w += double(w) * double(w);
  e.sum_sq_err += d * d;
  e.max_abs = std::max(e.max_abs, std::abs(d));
  ++e.n;
}

}  // namespace

CalibrateFn make_gptq_calibrator(std::shared_ptr<const HessianMap> hessians, GptqCalibration opts,
                                 std::shared_ptr<std::vector<std::string>> missing) {
  auto mu = std::make_shared<std::mutex>();
  return [hessians, opts, missing, mu](const std::string& module, const WeightView& w,
                                       const QuantSpec& spec, std::span<float> scale,
                                       std::span<float> shift, std::vector<uint8_t>& codes) {
    const int bits = qtype_info(spec.qtype).bits;
    auto it = hessians->find(module);
    if (it == hessians->end() || !it->second || it->second->n_in != w.n_in) {
      if (missing) {
        std::lock_guard lock(*mu);
        missing->push_back(module);
      }
      return;
    }
    const std::vector<float> wf = load_rows(w);
    GptqOptions g{bits, spec.group_size, spec.model_dtype, opts.damp, opts.act_order};
    GptqResult start;
    if (opts.start_from_optimizer) {
      start.scale.assign(scale.begin(), scale.end());
      start.shift.assign(shift.begin(), shift.end());
    }
    GptqResult r = gptq_refined(wf, w.n_out, w.n_in, it->second->h, g, ThreadPool::global(),
                                opts.start_from_optimizer ? &start : nullptr, opts.refine_rounds);
    QLLM_ASSERT(r.scale.size() == scale.size() && r.shift.size() == shift.size());
    std::copy(r.scale.begin(), r.scale.end(), scale.begin());
    std::copy(r.shift.begin(), r.shift.end(), shift.begin());
    codes = std::move(r.q);
  };
}

QuantError write_calibrated_codes(const WeightView& w, const QuantSpec& spec,
                                  std::span<const uint8_t> codes, std::span<const float> scale,
                                  std::span<const float> shift, std::span<std::byte> out,
                                  QuantError* baseline) {
  const int bits = qtype_info(spec.qtype).bits;
  const int64_t g = spec.group_size, n_groups = w.n_out * w.n_in / g;
  QLLM_ASSERT(static_cast<int64_t>(codes.size()) == w.n_out * w.n_in);
  QLLM_ASSERT(out.size() == quantized_bytes(spec, w.n_out, w.n_in));
  // Codes in [n_out, n_in] order are the grouped tensor [n_groups, g] row by row.
  pack_planar(codes.data(), n_groups, g, bits, reinterpret_cast<uint8_t*>(out.data()));
  QuantError err, base;
  std::vector<float> row(static_cast<size_t>(w.n_in));
  for (int64_t o = 0; o < w.n_out; ++o) {
    w.load(o, 0, w.n_in, row.data());
    for (int64_t k = 0; k < w.n_in / g; ++k) {
      const size_t gi = static_cast<size_t>(o * (w.n_in / g) + k);
      std::span<const float> grp(row.data() + k * g, static_cast<size_t>(g));
      float bs = 0, bsh = 0;
      if (baseline) max_params(grp, bits, spec.model_dtype, &bs, &bsh);
      for (int64_t i = 0; i < g; ++i) {
        const uint8_t q = codes[static_cast<size_t>(o * w.n_in + k * g + i)];
        add_error(err, grp[i], scale[gi] * static_cast<float>(q) - shift[gi]);
        if (baseline) {
          const uint8_t bq = quantize_affine_value(grp[i], bs, bsh, bits, spec.model_dtype);
          add_error(base, grp[i], bs * static_cast<float>(bq) - bsh);
        }
      }
    }
  }
  if (baseline) *baseline = base;
  return err;
}

}  // namespace qllm
