#include "format/safetensors_writer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>

#include "format/hf_dir.h"
#include "format/safetensors.h"
#include "util/error.h"
#include "util/mmap.h"

namespace qllm {

namespace fs = std::filesystem;

// ---- layout ----

int safetensors_dtype_rank(DType t) {
  // Positions in safetensors' Rust `enum Dtype` (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2,
  // F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, C64, F64,
  // I64, U64). Its derived Ord is what the writer sorts by, descending.
  switch (t) {
    case DType::BOOL:
      return 0;
    case DType::U8:
      return 4;
    case DType::I8:
      return 5;
    case DType::F8_E5M2:
      return 6;
    case DType::F8_E4M3:
      return 7;
    case DType::I16:
      return 11;
    case DType::F16:
      return 13;
    case DType::BF16:
      return 14;
    case DType::I32:
      return 15;
    case DType::F32:
      return 17;
    case DType::F64:
      return 19;
    case DType::I64:
      return 20;
  }
  return -1;
}

std::vector<std::size_t> safetensors_layout_order(const std::vector<TensorToWrite>& tensors) {
  std::vector<std::size_t> order(tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // std::string compares as unsigned bytes, like Rust's str Ord.
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    int ra = safetensors_dtype_rank(tensors[a].dtype),
        rb = safetensors_dtype_rank(tensors[b].dtype);
    if (ra != rb) return ra > rb;
    return tensors[a].name < tensors[b].name;
  });
  return order;
}

namespace {

// serde_json's string escaping: quote, backslash and control characters only; UTF-8 kept as is.
// The two-character escapes that serde_json and Python's json share. Returns false for any
// other character.
bool append_short_escape(std::string& out, char c) {
  switch (c) {
    case '"': out += "\\\""; return true;
    case '\\': out += "\\\\"; return true;
    case '\b': out += "\\b"; return true;
    case '\f': out += "\\f"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    default: return false;
  }
}

void append_json_string_serde(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (append_short_escape(out, c)) continue;
    if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

// Python json.dumps (ensure_ascii=True) string escaping: also every non-ASCII code point as
// \uXXXX, with surrogate pairs above the BMP, and DEL as \u007f.
void append_json_string_python(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  auto hex4 = [&](uint32_t v) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 15];
  };
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x80) {
      if (!append_short_escape(out, s[i])) {
        if (u < 0x20 || u == 0x7f) hex4(u);
        else out += static_cast<char>(u);
      }
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence; names came through a JSON parser, so they are valid UTF-8. An
    // invalid byte is written as its Latin-1 code point rather than dropped.
    int len = u >= 0xf0 ? 4 : u >= 0xe0 ? 3 : u >= 0xc0 ? 2 : 1;
    uint32_t cp = len == 4 ? u & 0x07u : len == 3 ? u & 0x0fu : len == 2 ? u & 0x1fu : u;
    if (i + len > s.size()) len = 1, cp = u;
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3fu);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      hex4(0xd800 + (cp >> 10));
      hex4(0xdc00 + (cp & 0x3ff));
    } else {
      hex4(cp);
    }
    i += len;
  }
  out += '"';
}

uint64_t byte_size(const fs::path& path, const TensorToWrite& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0) fail(path, "tensor '{}': negative dimension {}", t.name, d);
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      fail(path, "tensor '{}': shape overflows the byte size", t.name);
  }
  return n;
}

uint64_t element_count(const TensorToWrite& t) {
  uint64_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);  // bounded by byte_size()
  return n;
}

}  // namespace

std::string safetensors_header(const std::vector<const TensorToWrite*>& ordered,
                               const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      append_json_string_serde(h, k);
      h += ':';
      append_json_string_serde(h, v);
    }
    h += '}';
    first = false;
  }
  uint64_t offset = 0;
  for (const TensorToWrite* t : ordered) {
    const uint64_t n = byte_size("", *t);
    if (!first) h += ',';
    first = false;
    append_json_string_serde(h, t->name);
    h += ":{\"dtype\":\"";
    h += dtype_name(t->dtype);
    h += "\",\"shape\":[";
    for (std::size_t i = 0; i < t->shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(t->shape[i]);
    }
    h += "],\"data_offsets\":[";
    h += std::to_string(offset);
    h += ',';
    h += std::to_string(offset + n);
    h += "]}";
    offset += n;
  }
  h += '}';
  h.resize((h.size() + 7) / 8 * 8, ' ');
  return h;
}

// ---- single file ----

void write_safetensors(const fs::path& path, std::vector<TensorToWrite> tensors,
                       const WriteOptions& opts) {
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) fail(path, "tensor '{}': duplicate name", t.name);
    if (t.name == "__metadata__") fail(path, "'__metadata__' is reserved, not a tensor name");
    byte_size(path, t);  // validates the shape before anything is written
  }
  std::vector<const TensorToWrite*> ordered;
  for (std::size_t i : safetensors_layout_order(tensors)) ordered.push_back(&tensors[i]);
  const std::string header = safetensors_header(ordered, opts.metadata);
  if (header.size() > kMaxHeaderBytes)
    fail(path, "header of {} bytes exceeds the limit of {} bytes", header.size(), kMaxHeaderBytes);

  AtomicFile out(path);
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((header.size() >> (8 * i)) & 0xff);
  out.write(len);
  out.write(header);
  // One buffer reused for every tensor: peak memory is the largest tensor.
  std::vector<std::byte> buf;
  for (const TensorToWrite* t : ordered) {
    buf.resize(byte_size(path, *t));
    if (t->fill)
      t->fill(buf);
    else
      std::fill(buf.begin(), buf.end(), std::byte{0});
    out.write(buf);
  }
  out.commit();
}

// ---- sharded model directory ----

uint64_t parse_shard_size(std::string_view text) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  auto bad = [&]() -> uint64_t {
    fail_usage(
        "invalid shard size '{}' (expected a number followed by KB, MB, GB or TB, e.g. "
        "'5GB')",
        text);
  };
  if (s.empty()) bad();
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (s.size() > 19) bad();
    return std::stoull(s);
  }
  if (s.size() < 3) bad();
  std::string unit = s.substr(s.size() - 2);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = unit == "KB"   ? 1e3
                : unit == "MB" ? 1e6
                : unit == "GB" ? 1e9
                : unit == "TB" ? 1e12
                               : 0;
  if (mult == 0) bad();
  std::string num = s.substr(0, s.size() - 2);
  while (!num.empty() && std::isspace(static_cast<unsigned char>(num.back()))) num.pop_back();
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    bad();
  }
  if (used != num.size() || !(v > 0) || !std::isfinite(v) || v * mult >= 1.8e19) bad();
  return static_cast<uint64_t>(v * mult);  // int() in Python truncates too
}

namespace {

std::string shard_name(std::size_t i, std::size_t n) {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n);
}

std::string index_json(const std::map<std::string, std::string>& weight_map,
                       uint64_t total_parameters, uint64_t total_size) {
  std::string j = "{\n  \"metadata\": {\n";
  j += fmt::format("    \"total_parameters\": {},\n    \"total_size\": {}\n  }},\n",
                   total_parameters, total_size);
  j += "  \"weight_map\": {";
  bool first = true;
  for (const auto& [name, file] : weight_map) {
    j += first ? "\n    " : ",\n    ";
    first = false;
    append_json_string_python(j, name);
    j += ": ";
    append_json_string_python(j, file);
  }
  j += weight_map.empty() ? "}\n}\n" : "\n  }\n}\n";
  return j;
}

}  // namespace

std::vector<fs::path> write_model_weights(const fs::path& dir, std::vector<TensorToWrite> tensors,
                                          const WriteOptions& opts) {
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";

  // Split in the given order, as huggingface_hub does.
  uint64_t total_size = 0, total_params = 0;
  std::vector<std::vector<std::size_t>> shards;
  std::vector<std::size_t> current;
  uint64_t current_size = 0;
  const uint64_t limit = opts.max_shard_bytes;
  std::set<std::string_view> names;
  for (const auto& t : tensors)
    if (!names.insert(t.name).second) fail(dir, "tensor '{}': duplicate name", t.name);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = byte_size(dir, tensors[i]);
    total_size += n;
    total_params += element_count(tensors[i]);
    if (limit == 0) {
      current.push_back(i);
      continue;
    }
    if (n > limit) {  // a shard of its own, placed before the one being filled
      shards.push_back({i});
      continue;
    }
    if (current_size + n > limit) {
      shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
    }
    current.push_back(i);
    current_size += n;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  const bool sharded = shards.size() > 1;

  std::vector<fs::path> outputs;
  for (std::size_t s = 0; s < shards.size(); ++s)
    outputs.push_back(sharded ? dir / shard_name(s, shards.size()) : single_path);
  if (sharded) outputs.push_back(index_path);

  // Weight files of another layout that would shadow or confuse the new one.
  std::vector<fs::path> stale;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    static const std::regex kShard(R"(model-\d{5}-of-\d{5}\.safetensors)");
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const fs::path p = e.path();
      const std::string name = p.filename().string();
      const bool ours = std::find(outputs.begin(), outputs.end(), p) != outputs.end();
      if (ours) continue;
      if (std::regex_match(name, kShard) || (sharded && p == single_path) ||
          (!sharded && p == index_path))
        stale.push_back(p);
    }
  }
  // Nothing is written if any output or stale file is an input still being read.
  for (const auto* list : {&outputs, &stale})
    for (const auto& p : *list)
      if (is_mapped(p))
        fail(p,
             "refusing to overwrite a file that is being read (output and input are the same "
             "file)");

  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) fail(dir, "cannot create the output directory: {}", ec.message());

  std::map<std::string, std::string> weight_map;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    std::vector<TensorToWrite> part;
    part.reserve(shards[s].size());
    for (std::size_t i : shards[s]) {
      weight_map[tensors[i].name] = outputs[s].filename().string();
      part.push_back(std::move(tensors[i]));
    }
    write_safetensors(outputs[s], std::move(part), opts);
  }
  if (sharded)
    write_file_atomic(
        index_path,
        index_json(weight_map, opts.total_parameters.value_or(total_params), total_size));
  for (const auto& p : stale) fs::remove(p, ec);
  return outputs;
}

}  // namespace qllm
