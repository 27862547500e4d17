#include "format/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

#include "format/convert.h"
#include "util/error.h"

namespace qllm {

using nlohmann::json;

uint64_t TensorDesc::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);  // validated not to overflow
  return n;
}

std::vector<float> TensorRef::to_f32() const {
  std::vector<float> out(numel());
  qllm::to_f32(dtype(), bytes.data(), out);
  return out;
}

// ---- header parsing ----

namespace {

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// A valid header nests three deep (header, tensor entry, shape). Deeper input is refused while
// parsing: printing a deeply nested value in an error message (json::dump recurses) would
// overflow the stack.
constexpr int kMaxHeaderDepth = 8;

// Parses JSON while rejecting duplicate top-level keys, which nlohmann would silently merge.
json parse_header_json(const std::filesystem::path& path, std::string_view text) {
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth > kMaxHeaderDepth)
      fail(path, "header nests deeper than {} levels (not a safetensors header)", kMaxHeaderDepth);
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty()) {
      std::string k = parsed.get<std::string>();
      if (!seen.insert(k).second) duplicate = k;
    }
    return true;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(path, "header is not valid JSON");
  if (!duplicate.empty()) fail(path, "tensor '{}': duplicate name in header", duplicate);
  if (!j.is_object()) fail(path, "header must be a JSON object (got {})", j.type_name());
  return j;
}

// A JSON value for an error message, cut short: the header may hold megabytes of it.
std::string brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

uint64_t as_u64(const std::filesystem::path& path, const std::string& name, const json& v,
                const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  fail(path, "tensor '{}': {} must be a non-negative integer (got {})", name, what, brief(v));
}

}  // namespace

ParsedHeader parse_safetensors_header(const std::filesystem::path& path, std::string_view text,
                                      uint64_t data_size) {
  json j = parse_header_json(path, text);
  ParsedHeader out;
  for (auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path, "__metadata__ must be an object of strings");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) fail(path, "__metadata__ '{}' must be a string (got {})", k, brief(s));
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail(path, "tensor '{}': entry must be an object", name);
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!v.contains(field)) fail(path, "tensor '{}': missing field '{}'", name, field);
    TensorDesc d;
    d.name = name;
    const json& dt = v["dtype"];
    if (!dt.is_string()) fail(path, "tensor '{}': dtype must be a string", name);
    auto dtype = dtype_from_name(dt.get<std::string>());
    if (!dtype)
      fail(path, "tensor '{}': unknown dtype '{}' (expected one of F64 F32 F16 BF16 I64 I32 I16 "
                 "I8 U8 BOOL F8_E4M3 F8_E5M2)", name, dt.get<std::string>());
    d.dtype = *dtype;

    const json& shape = v["shape"];
    if (!shape.is_array()) fail(path, "tensor '{}': shape must be an array", name);
    uint64_t numel = 1;
    for (const json& dim : shape) {
      uint64_t n = as_u64(path, name, dim, "shape dimension");
      if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel))
        fail(path, "tensor '{}': shape {} overflows the element count", name, brief(shape));
      d.shape.push_back(static_cast<int64_t>(n));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, dtype_size(d.dtype), &nbytes))
      fail(path, "tensor '{}': shape {} overflows the byte size", name, brief(shape));

    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2)
      fail(path, "tensor '{}': data_offsets must be [begin, end]", name);
    d.begin = as_u64(path, name, off[0], "data offset");
    d.end = as_u64(path, name, off[1], "data offset");
    if (d.end < d.begin)
      fail(path, "tensor '{}': data_offsets end {} is before begin {}", name, d.end, d.begin);
    if (d.end - d.begin != nbytes)
      fail(path, "tensor '{}': byte range does not match shape {} of {} (expected {} bytes, got {})",
           name, brief(shape), dtype_name(d.dtype), nbytes, d.end - d.begin);
    if (d.end > data_size)
      fail(path, "tensor '{}': data_offsets [{}, {}] run past the data section (expected end <= "
                 "{}, got {}; truncated file?)", name, d.begin, d.end, data_size, d.end);
    out.tensors.push_back(std::move(d));
  }
  // Disjoint ranges: sort by offset and compare neighbours. Empty tensors overlap nothing.
  std::vector<const TensorDesc*> sorted;
  for (const auto& t : out.tensors)
    if (t.end > t.begin) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end)
      fail(path, "tensor '{}': data range [{}, {}] overlaps tensor '{}' [{}, {}]", sorted[i]->name,
           sorted[i]->begin, sorted[i]->end, sorted[i - 1]->name, sorted[i - 1]->begin,
           sorted[i - 1]->end);
  // File order: by data offset, as writers lay them out.
  std::stable_sort(out.tensors.begin(), out.tensors.end(),
                   [](const TensorDesc& a, const TensorDesc& b) { return a.begin < b.begin; });
  return out;
}

// ---- SafetensorsFile ----

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  const auto bytes = file_.bytes();
  if (bytes.size() < 8)
    fail(path, "truncated: file is {} bytes, expected at least 8 for the header length",
         bytes.size());
  header_len_ = read_u64_le(bytes.data());
  if (header_len_ > kMaxHeaderBytes)
    fail(path, "header length {} exceeds the limit (expected <= {} bytes; not a safetensors "
               "file?)", header_len_, kMaxHeaderBytes);
  if (header_len_ > bytes.size() - 8)
    fail(path, "header length {} is larger than the file allows (expected <= {}; truncated?)",
         header_len_, bytes.size() - 8);
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_len_);
  ParsedHeader h = parse_safetensors_header(path, text, bytes.size() - 8 - header_len_);
  tensors_ = std::move(h.tensors);
  metadata_ = std::move(h.metadata);
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorDesc* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorRef SafetensorsFile::ref(const TensorDesc& d) const {
  const std::byte* data = file_.bytes().data() + 8 + header_len_;
  return TensorRef{&d, {data + d.begin, static_cast<std::size_t>(d.end - d.begin)}, &file_.path()};
}

// ---- TensorSet ----

namespace {

std::vector<std::filesystem::path> shards_from_index(const std::filesystem::path& index_path,
                                                     std::map<std::string, std::string>* weight_map) {
  MappedFile f(index_path);
  std::string_view text(reinterpret_cast<const char*>(f.bytes().data()), f.size());
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(index_path, "not valid JSON");
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    fail(index_path, "missing object 'weight_map'");
  std::vector<std::filesystem::path> shards;
  for (auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) fail(index_path, "tensor '{}': shard name must be a string", name);
    std::string s = file.get<std::string>();
    if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..")
      fail(index_path, "tensor '{}': shard '{}' must be a file name in the same directory", name, s);
    (*weight_map)[name] = s;
    auto p = index_path.parent_path() / s;
    if (std::find(shards.begin(), shards.end(), p) == shards.end()) shards.push_back(p);
  }
  std::sort(shards.begin(), shards.end());
  return shards;
}

}  // namespace

TensorSet TensorSet::open(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  TensorSet set;
  set.source_ = path;
  std::error_code ec;
  fs::path index_path, single_path;
  if (fs::is_directory(path, ec)) {
    // transformers' from_pretrained looks for model.safetensors before the index.
    if (fs::exists(path / "model.safetensors")) single_path = path / "model.safetensors";
    else if (fs::exists(path / "model.safetensors.index.json")) index_path = path / "model.safetensors.index.json";
    else
      fail(path, "no weights (expected model.safetensors or model.safetensors.index.json)");
  } else if (path.string().ends_with(".json")) {
    index_path = path;
  } else {
    single_path = path;
  }

  std::map<std::string, std::string> weight_map;
  std::vector<fs::path> files;
  if (!index_path.empty()) files = shards_from_index(index_path, &weight_map);
  else files.push_back(single_path);

  for (const auto& f : files) {
    set.files_.push_back(std::make_unique<SafetensorsFile>(f));
    const SafetensorsFile& sf = *set.files_.back();
    for (const auto& t : sf.tensors()) {
      auto [it, inserted] = set.index_.try_emplace(t.name, set.files_.size() - 1, &t);
      if (!inserted)
        fail(f, "tensor '{}': also in {}", t.name,
             set.files_[it->second.first]->path().filename().string());
    }
  }
  for (const auto& [name, file] : weight_map) {
    auto it = set.index_.find(name);
    if (it == set.index_.end())
      fail(index_path, "tensor '{}': listed in weight_map but missing from {}", name, file);
    if (set.files_[it->second.first]->path().filename() != file)
      fail(index_path, "tensor '{}': weight_map says {}, found in {}", name, file,
           set.files_[it->second.first]->path().filename().string());
  }
  return set;
}

const TensorDesc* TensorSet::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.second;
}

TensorRef TensorSet::get(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(source_, "tensor '{}': missing", name);
  return files_[it->second.first]->ref(*it->second.second);
}

std::vector<TensorRef> TensorSet::all() const {
  std::vector<TensorRef> out;
  for (const auto& f : files_)
    for (const auto& t : f->tensors()) out.push_back(f->ref(t));
  return out;
}

uint64_t TensorSet::total_file_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  return n;
}

}  // namespace qllm
