// qllm random-init: a Hugging Face model directory with random weights of a config's real shapes.
//   qllm random-init CONFIG_JSON OUT_DIR [--dtype f32|bf16|f16] [--seed S]
// For speed and memory work where no trained weights exist. Writes OUT_DIR/config.json (a copy)
// and model.safetensors with the tensor names save_pretrained uses (tied heads not stored), as
// transformers' _init_weights does in spirit: matrices and embeddings ~ N(0, 0.02), norm weights
// 1, norm biases 0, linear biases ~ N(0, 0.02). Tensors are generated while being written, one
// at a time, in parallel blocks whose random streams depend only on (seed, tensor, block), so the
// output does not depend on the thread count.
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "command.h"
#include "format/convert.h"
#include "format/hf_config.h"
#include "format/hf_dir.h"
#include "format/safetensors_writer.h"
#include "model/arch.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace qllm::cli {
namespace {

constexpr float kInitStd = 0.02f;  // transformers' initializer_range default
constexpr int64_t kBlock = 4096;   // elements per random stream

struct Opts {
  std::string config, out_dir, dtype = "f32";
  uint64_t seed = 0;
};

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

enum class Fill { Normal, Ones, Zeros };

// Fills `dst` (numel elements of `dtype`) block by block over the thread pool.
void fill_tensor(std::span<std::byte> dst, DType dtype, Fill how, uint64_t stream) {
  const std::size_t esize = dtype_size(dtype);
  const auto numel = static_cast<int64_t>(dst.size() / esize);
  const int64_t n_blocks = (numel + kBlock - 1) / kBlock;
  ThreadPool::global().parallel_for(n_blocks, [&](int64_t b, int64_t e) {
    float buf[kBlock];
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t begin = blk * kBlock, n = std::min(kBlock, numel - begin);
      if (how == Fill::Normal) {
        uint64_t s = stream * 0x100000001b3ull ^ static_cast<uint64_t>(blk);
        for (int64_t i = 0; i < n; i += 2) {
          // Box-Muller from two 53-bit uniforms; u1 in (0, 1] keeps log finite.
          const double u1 = (static_cast<double>(splitmix64(s) >> 11) + 1.0) * 0x1.0p-53;
          const double u2 = static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53;
          const double r = std::sqrt(-2.0 * std::log(u1)) * kInitStd;
          buf[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
          if (i + 1 < n) buf[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
        }
      } else {
        std::fill(buf, buf + n, how == Fill::Ones ? 1.0f : 0.0f);
      }
      from_f32(dtype, {buf, static_cast<std::size_t>(n)}, dst.data() + begin * esize);
    }
  });
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p, "cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int run(const Opts& o) {
  DType dtype;
  if (o.dtype == "f32") {
    dtype = DType::F32;
  } else if (o.dtype == "f16") {
    dtype = DType::F16;
  } else if (o.dtype == "bf16") {
    dtype = DType::BF16;
  } else {
    fail_usage("--dtype: '{}' is not one of f32, f16, bf16", o.dtype);
  }
  const std::string text = read_text(o.config);
  const ModelConfig cfg = parse_model_config(text, o.config);
  std::vector<TensorToWrite> tensors;
  uint64_t stream = o.seed * 0x9e3779b97f4a7c15ull;
  auto add = [&](std::string name, std::vector<int64_t> shape, Fill how) {
    const uint64_t id = ++stream;
    tensors.push_back({std::move(name), dtype, std::move(shape),
                       [=](std::span<std::byte> dst) { fill_tensor(dst, dtype, how, id); }});
  };
  for (const ModuleInfo& m : list_modules(cfg)) {
    switch (m.kind) {
      case ModuleKind::Embedding:
      case ModuleKind::PositionEmbedding:
        add(m.name + ".weight", {m.n_out, m.n_in}, Fill::Normal);
        break;
      case ModuleKind::Norm:
        add(m.name + ".weight", {m.n_out}, Fill::Ones);
        if (m.has_bias) add(m.name + ".bias", {m.n_out}, Fill::Zeros);
        break;
      case ModuleKind::LmHead:
        if (cfg.tie_embeddings) break;  // save_pretrained drops tied weights
        [[fallthrough]];
      case ModuleKind::Linear:
        add(m.name + ".weight",
            m.conv1d ? std::vector<int64_t>{m.n_in, m.n_out} : std::vector<int64_t>{m.n_out, m.n_in},
            Fill::Normal);
        if (m.has_bias) add(m.name + ".bias", {m.n_out}, Fill::Normal);
        break;
    }
  }
  std::filesystem::create_directories(o.out_dir);
  write_file_atomic(std::filesystem::path(o.out_dir) / "config.json", text);
  WriteOptions w;
  w.metadata = {{"format", "pt"}};
  write_model_weights(o.out_dir, std::move(tensors), w);
  return 0;
}

Command kCmd{"random-init", "Write a model directory with random weights of a config's shapes",
             [](CLI::App& app) {
               auto o = std::make_shared<Opts>();
               app.add_option("config", o->config, "A config.json (e.g. GPT-2's or Qwen2's)")
                   ->required();
               app.add_option("out_dir", o->out_dir, "Directory to write")->required();
               app.add_option("--dtype", o->dtype, "Storage dtype: f32, bf16 or f16")
                   ->capture_default_str();
               app.add_option("--seed", o->seed, "Random seed")->capture_default_str();
               return std::function<int()>([o] { return run(*o); });
             }};

}  // namespace
}  // namespace qllm::cli
