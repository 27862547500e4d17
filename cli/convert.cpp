// qllm convert: re-save a checkpoint through the safetensors writer, optionally casting float
// tensors and (re)sharding. The output is byte-identical to what Python's safetensors save_file
// (and transformers' save_pretrained sharding) writes for the same tensors.
#include "format/convert.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "command.h"
#include "format/hf_dir.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "util/error.h"

namespace qllm::cli {
namespace {

struct Opts {
  std::string in, out, dtype, max_shard_size;
};

std::optional<DType> parse_target_dtype(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s == "f32" || s == "float32" || s == "F32") return DType::F32;
  if (s == "f16" || s == "float16" || s == "F16") return DType::F16;
  if (s == "bf16" || s == "bfloat16" || s == "BF16") return DType::BF16;
  fail_usage("--dtype: unknown dtype '{}' (expected f32, f16 or bf16)", s);
}

// F64 is left alone: going through f32 would round twice, unlike torch's direct cast.
bool castable(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

// Copies or casts one tensor into the writer's buffer, in chunks so that a cast needs only a
// small f32 scratch buffer.
void fill_tensor(const TensorRef& src, DType to, std::span<std::byte> dst) {
  if (src.dtype() == to) {
    std::memcpy(dst.data(), src.bytes.data(), dst.size());
    return;
  }
  constexpr std::size_t kChunk = 1 << 16;  // elements
  std::vector<float> tmp(std::min<uint64_t>(kChunk, src.numel()));
  const std::size_t in_size = dtype_size(src.dtype()), out_size = dtype_size(to);
  for (uint64_t i = 0; i < src.numel(); i += kChunk) {
    const std::size_t n = std::min<uint64_t>(kChunk, src.numel() - i);
    std::span<float> chunk(tmp.data(), n);
    to_f32(src.dtype(), src.bytes.data() + i * in_size, chunk);
    from_f32(to, chunk, dst.data() + i * out_size);
  }
}

int run(const Opts& o) {
  namespace fs = std::filesystem;
  const std::optional<DType> target = parse_target_dtype(o.dtype);
  const uint64_t shard_bytes = o.max_shard_size.empty() ? 0 : parse_shard_size(o.max_shard_size);
  TensorSet set = TensorSet::open(o.in);

  std::vector<TensorToWrite> tensors;
  for (const TensorRef& t : set.all()) {
    const DType to = target && castable(t.dtype()) ? *target : t.dtype();
    tensors.push_back(
        {t.name(), to, t.shape(), [t, to](std::span<std::byte> dst) { fill_tensor(t, to, dst); }});
  }
  WriteOptions wo;
  if (!set.files().empty()) wo.metadata = set.files().front()->metadata();
  wo.max_shard_bytes = shard_bytes;

  const fs::path out = o.out;
  const bool single_file = out.extension() == ".safetensors" && shard_bytes == 0;
  if (single_file) {
    write_safetensors(out, std::move(tensors), wo);
    std::fprintf(stderr, "wrote %s\n", out.c_str());
    return 0;
  }
  // A model directory, as transformers' save_pretrained writes it.
  if (wo.metadata.empty()) wo.metadata = {{"format", "pt"}};
  auto written = write_model_weights(out, std::move(tensors), wo);
  std::error_code ec;
  if (fs::is_directory(o.in, ec)) {
    auto side = copy_model_side_files(o.in, out);
    written.insert(written.end(), side.begin(), side.end());
  }
  for (const auto& p : written) std::fprintf(stderr, "wrote %s\n", p.c_str());
  return 0;
}

Command kCmd{"convert", "Re-save a checkpoint: cast float tensors, shard or unshard",
             [](CLI::App& app) {
               auto o = std::make_shared<Opts>();
               app.add_option("input", o->in,
                              "A .safetensors file, a model.safetensors.index.json or a model "
                              "directory")
                   ->required();
               app.add_option("output", o->out,
                              "A .safetensors file, or a directory to write model.safetensors "
                              "(or shards and an index) into; config and tokenizer files of "
                              "an input directory are copied unchanged")
                   ->required();
               app.add_option("--dtype", o->dtype,
                              "Cast F32/F16/BF16 tensors to f32, f16 or bf16 (round "
                              "to nearest even, as torch does)");
               app.add_option("--max-shard-size", o->max_shard_size,
                              "Shard past this size, e.g. 5GB or 500MB "
                              "(decimal units, as transformers)");
               return std::function<int()>([o] { return run(*o); });
             }};

}  // namespace
}  // namespace qllm::cli
