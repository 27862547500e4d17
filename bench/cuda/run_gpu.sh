#!/usr/bin/env bash
# The CUDA benchmark: builds random-weight models of real shapes (Qwen2-0.5B and GPT-2 124M),
# quantizes them, and runs `qllm bench --device cuda` on each: prompt speed at 512 tokens,
# batch-1 decode speed over 128 tokens, VRAM and the fraction of the measured device copy
# bandwidth the decode step reaches.
#   bench/cuda/run_gpu.sh QLLM_BINARY CONFIG_DIR WORK_DIR [OUT_DIR]
# CONFIG_DIR holds qwen2-0.5b-instruct.json and gpt2.json (the shared data's configs/).
# Peers (transformers BF16, transformers + optimum-quanto INT8/INT4): tools/bench_gpu_peers.py.
set -euo pipefail
qllm=$1 cfg=$2 work=$3 out=${4:-$3}
mkdir -p "$work" "$out"
bench() {  # name dir
  echo "== $1"
  "$qllm" bench "$2" --device cuda -p 512 -n 128 -r 3 --json > "$out/bench_$1.json"
  python3 - "$out/bench_$1.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); v = j["vram"]
print(f'{sys.argv[2]:<22} pp512 {j["pp"]["tokens_per_s"]:9.1f} t/s  tg128 {j["tg"]["tokens_per_s"]:8.1f} t/s  '
      f'weights {v["weights"]/2**20:7.1f} MiB = {v["weights_over_bf16"]:.3f} x bf16  '
      f'HBM {100*j["tg_fraction_of_copy_bandwidth"]:.0f}% of copy bw {j["copy_bandwidth_bytes_per_s"]/1e9:.0f} GB/s')
PY
}
for m in qwen2-0.5b:qwen2-0.5b-instruct.json gpt2:gpt2.json; do
  name=${m%%:*}
  "$qllm" random-init "$cfg/${m#*:}" "$work/$name-bf16" --dtype bf16 > /dev/null
  "$qllm" quantize "$work/$name-bf16" "$work/$name-int8" --weights int8 > /dev/null
  "$qllm" quantize "$work/$name-bf16" "$work/$name-int8-fhead" --weights int8 --exclude lm_head > /dev/null
  "$qllm" quantize "$work/$name-bf16" "$work/$name-int4" --weights int4 > /dev/null
  "$qllm" quantize "$work/$name-bf16" "$work/$name-int4-fhead" --weights int4 --exclude lm_head > /dev/null
  for v in bf16 int8 int8-fhead int4 int4-fhead; do bench "$name-$v" "$work/$name-$v"; done
done
