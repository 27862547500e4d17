#include "format/quanto_qmap.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "format/hf_dir.h"
#include "util/error.h"

namespace qllm {
namespace {

std::string supported_weight_names() {
  std::string s;
  for (const auto& q : kQTypes)
    if (!is_float_qtype(q.qtype)) s += (s.empty() ? "" : ", ") + std::string(q.quanto_name);
  return s + ", none";
}

// A JSON string literal as Python's json.dumps writes it (ensure_ascii=True).
std::string py_string(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', true); }

}  // namespace

const QmapEntry* QuantoQmap::find(std::string_view module) const {
  for (const auto& e : entries)
    if (e.module == module) return &e;
  return nullptr;
}

std::map<std::string, QType> QuantoQmap::weight_map() const {
  std::map<std::string, QType> m;
  for (const auto& e : entries)
    if (e.weights) m[e.module] = *e.weights;
  return m;
}

QuantoQmap parse_quanto_qmap(const std::filesystem::path& path, std::string_view json) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    fail(path, "invalid JSON: {}", e.what());
  }
  if (!j.is_object()) fail(path, "expected a JSON object of modules");
  QuantoQmap q;
  for (const auto& [module, v] : j.items()) {
    if (!v.is_object()) fail(path, "module '{}': expected an object with \"weights\"", module);
    QmapEntry e;
    e.module = module;
    auto w = v.find("weights");
    if (w == v.end() || !w->is_string())
      fail(path, "module '{}': missing string \"weights\"", module);
    const std::string wname = w->get<std::string>();
    if (wname != "none") {
      e.weights = qtype_from_quanto_name(wname);
      if (!e.weights)
        fail(path, "module '{}': unsupported weights qtype '{}' (expected one of {})", module, wname,
             supported_weight_names());
    }
    if (auto a = v.find("activations"); a != v.end()) {
      if (!a->is_string()) fail(path, "module '{}': \"activations\" must be a string", module);
      e.activations = a->get<std::string>();
    }
    q.entries.push_back(std::move(e));
  }
  return q;
}

QuantoQmap read_quanto_qmap(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_quanto_qmap(path, ss.str());
}

std::string quanto_qmap_json(const QuantoQmap& qmap) {
  if (qmap.entries.empty()) return "{}";
  std::string out = "{\n";
  for (std::size_t i = 0; i < qmap.entries.size(); ++i) {
    const auto& e = qmap.entries[i];
    const std::string w = e.weights ? std::string(qtype_info(*e.weights).quanto_name) : "none";
    out += fmt::format("    {}: {{\n        \"weights\": {},\n        \"activations\": {}\n    }}{}\n",
                       py_string(e.module), py_string(w), py_string(e.activations),
                       i + 1 < qmap.entries.size() ? "," : "");
  }
  return out + "}";
}

void write_quanto_qmap(const std::filesystem::path& path, const QuantoQmap& qmap) {
  write_file_atomic(path, quanto_qmap_json(qmap));
}

}  // namespace qllm
