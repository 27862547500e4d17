#include "runtime/model.h"

#include <fmt/format.h>

#include "format/convert.h"
#include "format/quanto_qmap.h"
#include "quant/load_linear.h"
#include "util/error.h"
#include "util/mmap.h"

namespace qllm {
namespace {

bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Returns the tensor if it exists with the expected shape and a float dtype; otherwise records
// the problem and returns an empty ref.
TensorRef float_tensor(const TensorSet& ts, const std::string& name, std::vector<int64_t> shape,
                       std::vector<std::string>& problems) {
  const TensorDesc* d = ts.find(name);
  if (!d) {
    problems.push_back(fmt::format("tensor '{}': missing (expected {})", name, shape_str(shape)));
    return {};
  }
  if (d->shape != shape) {
    problems.push_back(fmt::format("tensor '{}': wrong shape (expected {}, got {})", name,
                                   shape_str(shape), shape_str(d->shape)));
    return {};
  }
  if (!is_float(d->dtype)) {
    problems.push_back(fmt::format("tensor '{}': unsupported dtype {} (expected F32, F16 or BF16)",
                                   name, dtype_name(d->dtype)));
    return {};
  }
  return ts.get(name);
}

EmbeddingView embedding(const TensorSet& ts, const ModuleInfo& m, std::vector<std::string>& problems) {
  EmbeddingView e;
  TensorRef r = float_tensor(ts, m.name + ".weight", {m.n_out, m.n_in}, problems);
  if (!r.desc) return e;
  e.dtype = r.dtype();
  e.data = r.bytes.data();
  e.n_rows = m.n_out;
  e.n_cols = m.n_in;
  return e;
}

NormWeights norm(const TensorSet& ts, const ModuleInfo& m, std::vector<std::string>& problems) {
  NormWeights n;
  if (TensorRef r = float_tensor(ts, m.name + ".weight", {m.n_out}, problems); r.desc) n.w = r.to_f32();
  if (m.has_bias)
    if (TensorRef r = float_tensor(ts, m.name + ".bias", {m.n_out}, problems); r.desc) n.b = r.to_f32();
  return n;
}

// The lm_head as a Linear over the embedding matrix (tied weights).
Linear tied_head(const EmbeddingView& e) {
  Linear l;
  l.w.n_out = e.n_rows;
  l.w.n_in = e.n_cols;
  l.w.qtype = e.dtype == DType::F16 ? QType::F16 : e.dtype == DType::BF16 ? QType::BF16 : QType::F32;
  l.w.scale_dtype = e.dtype;
  l.w.data = e.data;
  return l;
}

}  // namespace

void EmbeddingView::row(int64_t r, float* out) const {
  const std::size_t sz = dtype_size(dtype);
  to_f32(dtype, data + static_cast<std::size_t>(r) * n_cols * sz, {out, static_cast<std::size_t>(n_cols)});
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir) {
  std::unique_ptr<Model> m(new Model());
  m->dir_ = dir;
  m->cfg_ = load_model_config(dir);
  m->spec_ = &arch_spec(m->cfg_.arch);
  m->ts_ = TensorSet::open(dir);
  // A quantized checkpoint names its quantized modules and their types in quanto_qmap.json.
  std::error_code ec;
  if (const auto qpath = dir / "quanto_qmap.json"; std::filesystem::exists(qpath, ec))
    m->qmap_ = read_quanto_qmap(qpath).weight_map();
  const ModelConfig& c = m->cfg_;
  const TensorSet& ts = m->ts_;
  const auto* qmap = m->qmap_.empty() ? nullptr : &m->qmap_;

  std::vector<std::string> problems;
  Weights& w = m->w_;
  w.layers.resize(static_cast<std::size_t>(c.n_layer));
  bool head_loaded = false;
  const ModuleInfo* head = nullptr;
  for (const ModuleInfo& mi : list_modules(c, ts)) {
    LayerWeights* L = mi.layer >= 0 ? &w.layers[static_cast<std::size_t>(mi.layer)] : nullptr;
    auto lin = [&] {
      return load_linear(ts, qmap, {mi.name, mi.n_out, mi.n_in, mi.conv1d, mi.has_bias}, &problems);
    };
    switch (mi.role) {
      case Role::TokEmbd: w.tok_embd = embedding(ts, mi, problems); break;
      case Role::PosEmbd: w.pos_embd = embedding(ts, mi, problems); break;
      case Role::AttnNorm: L->attn_norm = norm(ts, mi, problems); break;
      case Role::MlpNorm: L->mlp_norm = norm(ts, mi, problems); break;
      case Role::FinalNorm: w.final_norm = norm(ts, mi, problems); break;
      case Role::AttnQkv: L->wqkv = lin(); break;
      case Role::AttnQ: L->wq = lin(); break;
      case Role::AttnK: L->wk = lin(); break;
      case Role::AttnV: L->wv = lin(); break;
      case Role::AttnOut: L->wo = lin(); break;
      case Role::MlpGate: L->w_gate = lin(); break;
      case Role::MlpUp: L->w_up = lin(); break;
      case Role::MlpDown: L->w_down = lin(); break;
      case Role::LmHead:
        head = &mi;
        // A stored head (float or quantized) wins over tying: a quantized checkpoint of a tied
        // model stores its quantized lm_head separately.
        if (ts.contains(mi.name + ".weight") || ts.contains(mi.name + ".weight._data") ||
            (qmap && qmap->count(mi.name))) {
          w.lm_head = lin();
          head_loaded = true;
        } else if (!c.tie_embeddings) {
          problems.push_back(fmt::format("tensor '{}.weight': missing (expected [{}, {}]; the config "
                                         "does not tie it to the embeddings)", mi.name, mi.n_out, mi.n_in));
        }
        break;
    }
  }
  if (!problems.empty()) {
    std::string all;
    for (std::size_t i = 0; i < problems.size(); ++i) all += (i ? "; " : "") + problems[i];
    fail(dir, "{} {} model weights: {}", problems.size(),
         problems.size() == 1 ? "problem with the" : "problems with the", all);
  }
  if (!head_loaded && head) w.lm_head = tied_head(w.tok_embd);
  return m;
}

void Model::populate() const {
  for_each_linear(w_, [](const Linear& l) {
    if (l.w.data != nullptr && l.w.owned.empty()) populate_pages({l.w.data, l.w.data_bytes()});
  });
}

const Tokenizer& Model::tokenizer() const {
  std::call_once(tok_once_, [&] { tok_ = std::make_unique<Tokenizer>(Tokenizer::load(dir_)); });
  return *tok_;
}

}  // namespace qllm
