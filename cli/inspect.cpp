// qllm inspect: tensors, sizes, parameter count and config of a checkpoint.
//
// Accepts a .safetensors file, a model.safetensors.index.json or a model directory. Prints one row
// per tensor (name, dtype, shape, bytes), totals per dtype, the parameter count, the memory
// footprint and the file sizes; for a directory also a summary of config.json and of
// quanto_qmap.json. --json emits the same data as one JSON object.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "format/safetensors.h"
#include "util/error.h"
#include "util/mmap.h"

namespace qllm::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct Opts {
  std::string path;
  bool json = false, verbose = false;
};

// ---- parameter counting ----

// Logical weights held by one stored tensor, counted like transformers' num_parameters().
// Quanto keeps a quantized weight as one parameter of the logical shape [out, in] whose parts
// are stored as separate tensors, so:
//   .weight._data (I8/F8) holds one weight per element;
//   .weight._data._data (U8, int4/int2 packed along rows into [R, G]) holds out*in weights,
//     which is the row count of the matching ._scale ([out*in/G, 1]) times G, exactly; without
//     a scale we fall back to 8/bits weights per byte (2 for qint4, 4 for qint2) from the qmap;
//   ._scale and ._shift belong to that weight and add no parameters;
//   .input_scale / .output_scale are buffers, which num_parameters() does not count.
uint64_t parameters_of(const TensorSet& set, const TensorRef& t,
                       const std::map<std::string, std::string>& module_weights) {
  const std::string& n = t.name();
  auto ends = [&](std::string_view s) { return n.size() >= s.size() && n.ends_with(s); };
  if (ends(".weight._scale") || ends(".weight._shift") || ends(".input_scale") ||
      ends(".output_scale"))
    return 0;
  if (ends(".weight._data._data") && t.shape().size() == 2) {
    const std::string weight = n.substr(0, n.size() - std::string_view("._data._data").size());
    if (const TensorDesc* scale = set.find(weight + "._scale"); scale && scale->shape.size() >= 1)
      return static_cast<uint64_t>(scale->shape[0]) * static_cast<uint64_t>(t.shape()[1]);
    const std::string module = weight.substr(0, weight.size() - std::string_view(".weight").size());
    auto it = module_weights.find(module);
    const uint64_t per_byte = it != module_weights.end() && it->second == "qint2" ? 4 : 2;
    return t.numel() * per_byte;
  }
  return t.numel();
}

// ---- config.json and quanto_qmap.json ----

Json read_json_file(const fs::path& p) {
  MappedFile f(p);
  auto b = f.bytes();
  Json j = Json::parse(reinterpret_cast<const char*>(b.data()),
                       reinterpret_cast<const char*>(b.data()) + b.size(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(p, "not a valid JSON object");
  return j;
}

// The first of `keys` present in `j` (transformers' names differ between architectures and
// versions: gpt2 spells n_layer/n_embd/n_positions, v5 writes dtype where v4 wrote torch_dtype).
// Only scalars are reported: anything else is not a value these keys can hold.
Json first_of(const Json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (j.contains(k) && !j[k].is_null()) return j[k].is_primitive() ? j[k] : Json(nullptr);
  return nullptr;
}

Json summarise_config(const fs::path& p) {
  Json c = read_json_file(p);
  Json out;
  const Json* arch = c.contains("architectures") ? &c["architectures"] : nullptr;
  out["architecture"] = arch && arch->is_array() && !arch->empty() && (*arch)[0].is_string()
                            ? (*arch)[0]
                            : Json(nullptr);
  out["model_type"] = first_of(c, {"model_type"});
  out["n_layer"] = first_of(c, {"num_hidden_layers", "n_layer"});
  out["n_embd"] = first_of(c, {"hidden_size", "n_embd"});
  out["n_head"] = first_of(c, {"num_attention_heads", "n_head"});
  out["n_head_kv"] = first_of(c, {"num_key_value_heads"});
  out["n_ff"] = first_of(c, {"intermediate_size", "n_inner"});
  out["n_vocab"] = first_of(c, {"vocab_size"});
  out["n_ctx"] = first_of(c, {"max_position_embeddings", "n_positions"});
  out["dtype"] = first_of(c, {"dtype", "torch_dtype"});
  out["tie_word_embeddings"] = first_of(c, {"tie_word_embeddings"});
  return out;
}

// quanto_qmap.json: {"module": {"weights": "qint4", "activations": "none"}, ...}.
Json summarise_qmap(const fs::path& p, std::map<std::string, std::string>* module_weights) {
  Json q = read_json_file(p);
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
  for (auto& [module, v] : q.items()) {
    if (!v.is_object() || !v.contains("weights") || !v.contains("activations") ||
        !v["weights"].is_string() || !v["activations"].is_string())
      fail(p, "module '{}': expected {{\"weights\": str, \"activations\": str}}", module);
    auto w = v["weights"].get<std::string>(), a = v["activations"].get<std::string>();
    (*module_weights)[module] = w;
    groups[{w, a}].push_back(module);
  }
  Json out;
  out["modules"] = q.size();
  Json by = Json::array();
  for (auto& [key, names] : groups)
    by.push_back({{"weights", key.first},
                  {"activations", key.second},
                  {"modules", names.size()},
                  {"names", names}});
  out["by_qtype"] = by;
  return out;
}

// ---- collecting ----

Json collect(const fs::path& path) {
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  Json report;
  report["path"] = path.string();

  std::map<std::string, std::string> module_weights;
  Json qmap, config;
  if (is_dir && fs::exists(path / "quanto_qmap.json"))
    qmap = summarise_qmap(path / "quanto_qmap.json", &module_weights);
  if (is_dir && fs::exists(path / "config.json")) config = summarise_config(path / "config.json");

  TensorSet set = TensorSet::open(path);
  Json files = Json::array();
  for (const auto& f : set.files())
    files.push_back({{"path", f->path().string()}, {"bytes", f->file_size()}});

  Json tensors = Json::array();
  std::map<std::string, std::array<uint64_t, 3>> per_dtype;  // tensors, bytes, parameters
  uint64_t total_bytes = 0, total_params = 0;
  for (const TensorRef& t : set.all()) {
    const uint64_t bytes = t.bytes.size(), params = parameters_of(set, t, module_weights);
    tensors.push_back({{"name", t.name()},
                       {"dtype", dtype_name(t.dtype())},
                       {"shape", t.shape()},
                       {"bytes", bytes},
                       {"parameters", params},
                       {"file", t.file->filename().string()}});
    auto& d = per_dtype[std::string(dtype_name(t.dtype()))];
    d[0] += 1;
    d[1] += bytes;
    d[2] += params;
    total_bytes += bytes;
    total_params += params;
  }
  Json dtypes = Json::object();
  for (auto& [name, d] : per_dtype)
    dtypes[name] = {{"tensors", d[0]}, {"bytes", d[1]}, {"parameters", d[2]}};

  report["files"] = files;
  report["file_bytes"] = set.total_file_bytes();
  report["metadata"] = set.files().empty() ? Json::object() : Json(set.files().front()->metadata());
  report["tensor_count"] = tensors.size();
  report["parameters"] = total_params;
  // transformers' get_memory_footprint(): bytes of all parameters and buffers, which for a
  // checkpoint is the bytes of its tensors (tied weights are stored, and counted, once).
  report["memory_footprint_bytes"] = total_bytes;
  report["dtypes"] = dtypes;
  report["tensors"] = tensors;
  if (!config.is_null()) report["config"] = config;
  if (!qmap.is_null()) report["quantization"] = qmap;
  return report;
}

// ---- printing ----

std::string shape_str(const Json& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + shape[i].dump();
  return s + "]";
}

// 260032 -> "260,032".
std::string grouped(uint64_t v) {
  std::string s = std::to_string(v), out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string human_bytes(uint64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return fmt::format("{:.2f} {}", v, units[u]);
}

void print_table(const Json& r, bool verbose) {
  const bool sharded = r["files"].size() > 1;
  std::size_t wn = 4, wd = 5, ws = 5, wb = 5, wf = 4;
  for (const auto& t : r["tensors"]) {
    wn = std::max(wn, t["name"].get<std::string>().size());
    wd = std::max(wd, t["dtype"].get<std::string>().size());
    ws = std::max(ws, shape_str(t["shape"]).size());
    wb = std::max(wb, grouped(t["bytes"].get<uint64_t>()).size());
    wf = std::max(wf, t["file"].get<std::string>().size());
  }
  std::string head = fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}", "name", wn, "dtype", wd, "shape",
                                 ws, "bytes", wb);
  if (sharded) head += fmt::format("  {}", "file");
  std::printf("%s\n", head.c_str());
  for (const auto& t : r["tensors"]) {
    std::string row = fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}", t["name"].get<std::string>(),
                                  wn, t["dtype"].get<std::string>(), wd, shape_str(t["shape"]), ws,
                                  grouped(t["bytes"].get<uint64_t>()), wb);
    if (sharded) row += "  " + t["file"].get<std::string>();
    std::printf("%s\n", row.c_str());
  }

  std::printf("\n%-8s  %7s  %15s  %15s\n", "dtype", "tensors", "parameters", "bytes");
  for (auto& [name, d] : r["dtypes"].items())
    std::printf("%-8s  %7s  %15s  %15s\n", name.c_str(),
                grouped(d["tensors"].get<uint64_t>()).c_str(),
                grouped(d["parameters"].get<uint64_t>()).c_str(),
                grouped(d["bytes"].get<uint64_t>()).c_str());

  std::printf("\ntensors           %s\n", grouped(r["tensor_count"].get<uint64_t>()).c_str());
  std::printf("parameters        %s\n", grouped(r["parameters"].get<uint64_t>()).c_str());
  const uint64_t mem = r["memory_footprint_bytes"].get<uint64_t>();
  std::printf("memory footprint  %s bytes (%s)\n", grouped(mem).c_str(), human_bytes(mem).c_str());
  for (const auto& f : r["files"]) {
    const uint64_t b = f["bytes"].get<uint64_t>();
    std::printf("file              %s  %s bytes (%s)\n", f["path"].get<std::string>().c_str(),
                grouped(b).c_str(), human_bytes(b).c_str());
  }
  for (auto& [k, v] : r["metadata"].items())
    std::printf("metadata          %s = %s\n", k.c_str(), v.get<std::string>().c_str());

  if (r.contains("config")) {
    std::printf("\nconfig.json\n");
    for (auto& [k, v] : r["config"].items())
      if (!v.is_null())
        std::printf("  %-20s %s\n", k.c_str(),
                    v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
  }
  if (r.contains("quantization")) {
    const auto& q = r["quantization"];
    std::printf("\nquanto_qmap.json: %s modules\n", grouped(q["modules"].get<uint64_t>()).c_str());
    for (const auto& g : q["by_qtype"]) {
      std::printf("  weights %-8s activations %-8s %s modules\n",
                  g["weights"].get<std::string>().c_str(),
                  g["activations"].get<std::string>().c_str(),
                  grouped(g["modules"].get<uint64_t>()).c_str());
      if (verbose)
        for (const auto& n : g["names"]) std::printf("    %s\n", n.get<std::string>().c_str());
    }
  }
}

int run(const Opts& o) {
  Json report = collect(o.path);
  if (o.json) {
    if (!o.verbose && report.contains("quantization"))
      for (auto& g : report["quantization"]["by_qtype"]) g.erase("names");
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    print_table(report, o.verbose);
  }
  return 0;
}

Command kCmd{"inspect", "Show tensors, sizes and config of a model", [](CLI::App& app) {
               auto o = std::make_shared<Opts>();
               app.add_option("path", o->path,
                              "A .safetensors file, a model.safetensors.index.json or a model "
                              "directory")
                   ->required();
               app.add_flag("--json", o->json, "Print the report as JSON");
               app.add_flag("-v,--verbose", o->verbose,
                            "List the modules of each quantization type");
               return std::function<int()>([o] { return run(*o); });
             }};

}  // namespace
}  // namespace qllm::cli
