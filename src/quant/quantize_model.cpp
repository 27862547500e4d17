#include "quant/quantize_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "format/convert.h"
#include "format/hf_config.h"
#include "format/hf_dir.h"
#include "format/quanto_qmap.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/arch.h"
#include "quant/module_filter.h"
#include "util/error.h"
#include "util/mmap.h"
#include "util/thread_pool.h"

namespace fs = std::filesystem;

namespace qllm {
namespace {

// ---- output directory safety ----

bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin(), o = outer.begin();
  for (; o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

void check_output_dir(const fs::path& in_dir, const fs::path& out_dir, bool force) {
  std::error_code ec;
  const fs::path in = fs::canonical(in_dir, ec);
  const fs::path out = fs::weakly_canonical(fs::absolute(out_dir), ec);
  if (is_within(out, in))
    fail(out_dir, "output directory is the input directory or inside it (input: {})", in_dir.string());
  if (fs::exists(out_dir, ec)) {
    if (fs::equivalent(in_dir, out_dir, ec))
      fail(out_dir, "output directory is the input directory");
    if (is_within(in, out))
      fail(out_dir, "output directory contains the input directory; replacing it would delete the input");
    if (!force) fail(out_dir, "output directory already exists (use --force to replace it)");
    if (!fs::is_directory(out_dir, ec)) fail(out_dir, "exists and is not a directory");
  }
}

// A fresh temporary directory beside `out_dir`, removed unless released.
class TempDir {
 public:
  explicit TempDir(const fs::path& out_dir) {
    fs::path parent = fs::absolute(out_dir).parent_path();
    std::error_code ec;
    fs::create_directories(parent, ec);
    std::string tmpl = (parent / ("." + out_dir.filename().string() + ".tmp-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) fail(parent, "cannot create a temporary directory: {}", std::strerror(errno));
    path_ = tmpl;
    // mkdtemp creates the directory 0700; give it the permissions mkdir would.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    fs::permissions(path_, static_cast<fs::perms>(0777 & ~mask), ec);
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  // Moves the finished directory to `out_dir`, replacing an existing one.
  void commit(const fs::path& out_dir) {
    std::error_code ec;
    fs::path old;
    if (fs::exists(out_dir, ec)) {
      old = path_.string() + ".old";
      fs::rename(out_dir, old, ec);
      if (ec) fail(out_dir, "cannot move the existing directory aside: {}", ec.message());
    }
    fs::rename(path_, out_dir, ec);
    if (ec) {
      if (!old.empty()) fs::rename(old, out_dir, ec);
      fail(out_dir, "cannot rename the finished output into place: {}", ec.message());
    }
    path_.clear();
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  fs::path path_;
};

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p, "cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool is_float_dtype(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

// ---- the plan ----

struct Planned {
  const ModuleInfo* info = nullptr;
  TensorRef src;  // float weight (for a tied lm_head: the embedding)
  QuantSpec spec;
  std::vector<float> scale, shift;
  std::vector<uint8_t> codes;  // calibrated codes [n_out, n_in], if any
  LayerReport report;
};

TensorToWrite copy_tensor(const TensorRef& r, std::string name, std::function<void(uint64_t)> tick) {
  TensorToWrite t{std::move(name), r.dtype(), r.shape(), nullptr};
  t.fill = [r, tick](std::span<std::byte> out) {
    std::memcpy(out.data(), r.bytes.data(), out.size());
    release_pages(r.bytes);
    tick(out.size());
  };
  return t;
}

TensorToWrite scalar_one(std::string name, DType dt) {
  TensorToWrite t{std::move(name), dt, {}, nullptr};
  t.fill = [dt](std::span<std::byte> out) {
    const float one = 1.0f;
    from_f32(dt, {&one, 1}, out.data());
  };
  return t;
}

TensorToWrite floats(std::string name, DType dt, const std::vector<float>* v) {
  TensorToWrite t{std::move(name), dt, {static_cast<int64_t>(v->size()), 1}, nullptr};
  t.fill = [dt, v](std::span<std::byte> out) { from_f32(dt, *v, out.data()); };
  return t;
}

uint64_t tensor_bytes(const TensorToWrite& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

}  // namespace

std::string set_json_bool_minimal(const std::string& json, const std::string& key, bool value) {
  const std::string v = value ? "true" : "false";
  const std::regex re("(\"" + key + "\"\\s*:\\s*)(true|false|null)");
  std::smatch m;
  // Only a top-level occurrence counts: the key at nesting depth 1.
  auto depth_at = [&](std::size_t pos) {
    int d = 0;
    bool in_str = false;
    for (std::size_t i = 0; i < pos; ++i) {
      const char c = json[i];
      if (in_str) {
        if (c == '\\') ++i;
        else if (c == '"') in_str = false;
      } else if (c == '"') {
        in_str = true;
      } else if (c == '{' || c == '[') {
        ++d;
      } else if (c == '}' || c == ']') {
        --d;
      }
    }
    return d;
  };
  for (auto it = std::sregex_iterator(json.begin(), json.end(), re); it != std::sregex_iterator(); ++it) {
    const std::size_t pos = static_cast<std::size_t>(it->position(0));
    if (depth_at(pos) != 1) continue;
    const std::size_t vpos = pos + static_cast<std::size_t>(it->length(1));
    return json.substr(0, vpos) + v + json.substr(vpos + static_cast<std::size_t>(it->length(2)));
  }
  // Absent: add it as the last member, in the file's indentation style.
  const std::size_t close = json.find_last_of('}');
  if (close == std::string::npos) return json;
  std::size_t last = json.find_last_not_of(" \t\r\n", close == 0 ? 0 : close - 1);
  const bool empty = last == std::string::npos || json[last] == '{';
  std::string indent = "  ";
  if (auto nl = json.find('\n'); nl != std::string::npos) {
    auto first = json.find_first_not_of(" \t", nl + 1);
    if (first != std::string::npos && first > nl + 1) indent = json.substr(nl + 1, first - nl - 1);
  }
  return json.substr(0, last + 1) + (empty ? "" : ",") + "\n" + indent + "\"" + key + "\": " + v +
         "\n" + json.substr(close);
}

QuantizeReport quantize_model(const fs::path& in_dir, const fs::path& out_dir,
                              const QuantizeModelOptions& opts) {
  const QTypeInfo& qinfo = qtype_info(opts.qtype);
  if (is_float_qtype(opts.qtype)) fail_usage("--weights must be a quantized type");
  const WeightOptimizer optimizer = opts.optimizer.value_or(default_optimizer(opts.qtype));
  if (!optimizer_fits(optimizer, opts.qtype))
    fail_usage("optimizer '{}' does not apply to {} (use {})", optimizer_name(optimizer), qinfo.name,
               qinfo.affine ? "max, search or hqq" : "absmax");
  if (opts.group_size && !qinfo.affine) fail_usage("--group-size applies to int4 and int2 only");
  if (opts.group_size && *opts.group_size <= 0) fail_usage("--group-size must be positive");
  if (!fs::is_directory(in_dir)) fail(in_dir, "not a model directory");
  check_output_dir(in_dir, out_dir, opts.force);
  if (fs::exists(in_dir / "quanto_qmap.json"))
    fail(in_dir, "already quantized (has quanto_qmap.json); quantize the original model");

  const ModelConfig cfg = load_model_config(in_dir);
  const TensorSet ts = TensorSet::open(in_dir);
  for (const TensorRef& r : ts.all())
    if (r.name().find(".weight._") != std::string::npos)
      fail(in_dir, "tensor '{}': already quantized; quantize the original model", r.name());
  const std::vector<ModuleInfo> modules = list_modules(cfg, ts);

  QuantizeReport rep;
  rep.optimizer = optimizer;
  rep.calibration = opts.calibrate ? opts.calibration : std::string();
  ModuleFilter filter(opts.include, opts.exclude);
  const ModuleInfo* embedding = nullptr;
  for (const auto& m : modules)
    if (m.kind == ModuleKind::Embedding) embedding = &m;

  // ---- choose modules and validate their weights ----
  std::vector<std::unique_ptr<Planned>> plan;
  std::map<std::string, Planned*> planned_by_name;
  bool lm_head_quantized = false, embedding_quantized = false;
  for (const auto& m : modules) {
    const bool eligible = m.kind == ModuleKind::Linear || m.kind == ModuleKind::LmHead ||
                          (m.kind == ModuleKind::Embedding && opts.quantize_embeddings);
    if (!filter.selected(m.name) || !eligible) continue;
    const TensorDesc* d = ts.find(m.name + ".weight");
    if (!d && m.kind == ModuleKind::LmHead && cfg.tie_embeddings && embedding)
      d = ts.find(embedding->name + ".weight");
    if (!d) fail(in_dir, "tensor '{}.weight': missing", m.name);
    auto p = std::make_unique<Planned>();
    p->info = &m;
    p->src = ts.get(d->name);
    const std::vector<int64_t> expect = m.conv1d ? std::vector<int64_t>{m.n_in, m.n_out}
                                                 : std::vector<int64_t>{m.n_out, m.n_in};
    if (p->src.shape() != expect)
      fail(in_dir, "tensor '{}': wrong shape (expected [{}, {}], got [{}])", d->name, expect[0], expect[1],
           fmt::join(p->src.shape(), ", "));
    if (!is_float_dtype(p->src.dtype()))
      fail(in_dir, "tensor '{}': cannot quantize dtype {} (expected F32, F16 or BF16)", d->name,
           dtype_name(p->src.dtype()));
    QuantSpec& s = p->spec;
    s.qtype = opts.qtype;
    s.model_dtype = p->src.dtype();
    s.optimizer = optimizer;
    if (qinfo.affine) {
      const std::optional<int64_t> rule = quanto_group_size(m.n_in);
      s.group_size = opts.group_size.value_or(rule.value_or(m.n_in));
      if (m.n_in % s.group_size != 0)
        fail_usage("--group-size {} does not divide the {} inputs of '{}'", s.group_size, m.n_in, m.name);
      // quanto keeps bf16 qint4 weights with group size 128 in tinygemm's format on CPU and
      // saves a shift that went through its lossy conversion (quantizer.h).
      s.tinygemm_shift = opts.qtype == QType::QInt4 && s.model_dtype == DType::BF16 && rule == 128 &&
                         s.group_size == 128;
    }
    LayerReport& lr = p->report;
    lr.module = m.name;
    lr.qtype = opts.qtype;
    lr.dtype = s.model_dtype;
    lr.n_out = m.n_out;
    lr.n_in = m.n_in;
    lr.group_size = qinfo.affine ? s.group_size : 0;
    lr.quanto_loadable = !m.conv1d && m.kind != ModuleKind::Embedding &&
                         (!qinfo.affine || s.group_size == quanto_group_size(m.n_in).value_or(m.n_in));
    if (m.kind == ModuleKind::LmHead) lm_head_quantized = true;
    if (m.kind == ModuleKind::Embedding) embedding_quantized = true;
    planned_by_name[m.name] = p.get();
    plan.push_back(std::move(p));
  }
  for (const auto& m : modules)
    if (m.kind == ModuleKind::Norm || m.kind == ModuleKind::PositionEmbedding) (void)filter.selected(m.name);
  for (const auto& u : filter.unmatched_patterns())
    rep.warnings.push_back(fmt::format("{} matches no module", u));
  if (plan.empty()) rep.warnings.push_back("no module selected for quantization; the output is a copy");
  bool any_conv1d = false;
  for (const auto& p : plan) any_conv1d |= p->info->conv1d;
  if (any_conv1d)
    rep.warnings.push_back("GPT-2 Conv1D layers are quantized in the Linear [out, in] layout; "
                           "optimum-quanto cannot load those modules");
  if (embedding_quantized)
    rep.warnings.push_back("the token embedding is quantized; optimum-quanto cannot load that module");

  // ---- pass 1: scales and shifts, NaN/Inf check ----
  ThreadPool& pool = ThreadPool::global();
  uint64_t total_bytes = 0;
  for (const auto& p : plan) total_bytes += p->src.bytes.size();
  uint64_t done = 0;
  for (const auto& p : plan) {
    const ModuleInfo& m = *p->info;
    WeightView w{p->src.bytes.data(), p->src.dtype(), m.n_out, m.n_in, m.conv1d};
    const int64_t ns = n_scale_rows(p->spec, m.n_out, m.n_in);
    p->scale.resize(static_cast<std::size_t>(ns));
    if (qinfo.affine) p->shift.resize(static_cast<std::size_t>(ns));
    if (auto bad = compute_quant_params(w, p->spec, p->scale, p->shift, pool)) {
      const int64_t o = *bad / m.n_in, i = *bad % m.n_in;
      float v;
      w.load(o, i, 1, &v);
      fail(*p->src.file, "tensor '{}': non-finite weight {} at [{}, {}] (row {} of module '{}'); "
           "the model is corrupt", p->src.name(), v, m.conv1d ? i : o, m.conv1d ? o : i, o, m.name);
    }
    if (opts.calibrate && qinfo.affine) opts.calibrate(m.name, w, p->spec, p->scale, p->shift, p->codes);
    release_pages(p->src.bytes);
    done += p->src.bytes.size();
    if (opts.progress) opts.progress("analyze", done, total_bytes);
  }

  // ---- the tensors to write, in model order ----
  uint64_t written = 0;
  auto tick = [&opts, &written, total_bytes](uint64_t n) {
    written += n;
    if (opts.progress) opts.progress("write", std::min(written, total_bytes), total_bytes);
  };
  std::vector<TensorToWrite> out;
  std::set<std::string> covered;
  auto take = [&](const std::string& name) {
    if (ts.contains(name)) {
      covered.insert(name);
      out.push_back(copy_tensor(ts.get(name), name, [](uint64_t) {}));
    }
  };
  QuantizeReport* rp = &rep;
  for (const auto& m : modules) {
    auto it = planned_by_name.find(m.name);
    if (it == planned_by_name.end()) {
      take(m.name + ".weight");
      take(m.name + ".bias");
      continue;
    }
    Planned* p = it->second;
    covered.insert(m.name + ".weight");
    const std::string base = m.name + ".weight.";
    const auto shape = quantized_shape(p->spec, m.n_out, m.n_in);
    TensorToWrite data{qinfo.affine ? base + "_data._data" : base + "_data",
                       qinfo.affine ? DType::U8 : (opts.qtype == QType::QFloat8 ? DType::F8_E4M3 : DType::I8),
                       {shape[0], shape[1]}, nullptr};
    data.fill = [p, &pool, tick, rp](std::span<std::byte> buf) {
      const ModuleInfo& mi = *p->info;
      WeightView w{p->src.bytes.data(), p->src.dtype(), mi.n_out, mi.n_in, mi.conv1d};
      QuantError base_err;
      const bool other = p->spec.optimizer != default_optimizer(p->spec.qtype) || !p->codes.empty();
      p->report.error = p->codes.empty()
                            ? quantize_weight(w, p->spec, p->scale, p->shift, buf, pool, other ? &base_err : nullptr)
                            : write_calibrated_codes(w, p->spec, p->codes, p->scale, p->shift, buf, &base_err);
      if (other) p->report.baseline = base_err;
      rp->total.merge(p->report.error);
      release_pages(p->src.bytes);
      tick(p->src.bytes.size());
    };
    out.push_back(std::move(data));
    out.push_back(floats(base + "_scale", p->spec.model_dtype, &p->scale));
    if (qinfo.affine) out.push_back(floats(base + "_shift", p->spec.model_dtype, &p->shift));
    take(m.name + ".bias");
    out.push_back(scalar_one(m.name + ".input_scale", p->spec.model_dtype));
    out.push_back(scalar_one(m.name + ".output_scale", p->spec.model_dtype));
  }
  // A tied lm_head whose embedding got quantized keeps the float matrix under its own name.
  if (cfg.tie_embeddings && embedding_quantized && !lm_head_quantized && embedding) {
    for (const auto& m : modules)
      if (m.kind == ModuleKind::LmHead && !ts.contains(m.name + ".weight"))
        out.push_back(copy_tensor(ts.get(embedding->name + ".weight"), m.name + ".weight", [](uint64_t) {}));
  }
  // Anything else the checkpoint holds (buffers, unknown extras) is copied unchanged.
  for (const TensorRef& r : ts.all())
    if (!covered.count(r.name())) {
      bool dup = false;
      for (const auto& t : out) dup |= t.name == r.name();
      if (!dup) out.push_back(copy_tensor(r, r.name(), [](uint64_t) {}));
    }

  for (const TensorRef& r : ts.all()) rep.footprint_before += r.bytes.size();
  for (const auto& t : out) rep.footprint_after += tensor_bytes(t);
  for (const auto& f : ts.files()) rep.file_bytes_before += f->file_size();
  if (fs::exists(in_dir / "model.safetensors.index.json"))
    rep.file_bytes_before += fs::file_size(in_dir / "model.safetensors.index.json");

  // ---- write into a temporary directory, then move it into place ----
  TempDir tmp(out_dir);
  WriteOptions wo;
  wo.metadata = {{"format", "pt"}};
  wo.max_shard_bytes = opts.max_shard_bytes;
  // transformers' num_parameters(): quantization keeps every weight's logical shape.
  uint64_t n_params = 0;
  for (const TensorRef& r : ts.all()) n_params += r.numel();
  wo.total_parameters = n_params;
  auto files = write_model_weights(tmp.path(), std::move(out), wo);
  QuantoQmap qmap;
  for (const auto& m : modules)
    if (planned_by_name.count(m.name)) qmap.entries.push_back({m.name, opts.qtype, "none"});
  write_quanto_qmap(tmp.path() / "quanto_qmap.json", qmap);
  copy_model_side_files(in_dir, tmp.path());
  if (cfg.tie_embeddings && (lm_head_quantized || embedding_quantized)) {
    const std::string text = read_text(in_dir / "config.json");
    write_file_atomic(tmp.path() / "config.json", set_json_bool_minimal(text, "tie_word_embeddings", false));
  }
  for (const auto& f : files) {
    rep.file_bytes_after += fs::file_size(f);
    rep.files.push_back(f.filename());
  }
  rep.files.push_back("quanto_qmap.json");
  tmp.commit(out_dir);
  for (auto& p : plan) rep.layers.push_back(std::move(p->report));
  return rep;
}

}  // namespace qllm
