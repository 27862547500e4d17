#!/usr/bin/env bash
# The main job: quantize a model to INT8, show the footprint before and after, and generate
# text from both. Usage: scripts/demo.sh [MODEL_DIR] [PROMPT]
# MODEL_DIR defaults to models/stories260K in the data directory ($QLLM_DATA_DIR or ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${QLLM_DATA_DIR:-../shared}"
model="${1:-$data/models/stories260K}"
prompt="${2:-Once upon a time}"
qllm="${QLLM_BIN:-build/release/qllm}"
out="$(mktemp -d)/$(basename "$model")-int8"
trap 'rm -rf "$(dirname "$out")"' EXIT

echo "== inspect $model"
"$qllm" inspect "$model" | sed -n '/^dtype  *tensors/,$p'
echo
echo "== quantize to INT8 (every Linear layer, lm_head kept in float)"
"$qllm" quantize "$model" "$out" --weights int8 --exclude lm_head
echo
echo "== generate: original"
"$qllm" generate "$model" --prompt "$prompt" --max-new-tokens 64
echo
echo "== generate: INT8"
"$qllm" generate "$out" --prompt "$prompt" --max-new-tokens 64
echo
echo "== inspect the INT8 directory"
"$qllm" inspect "$out" | sed -n '/^dtype  *tensors/,/^file/p'
echo
echo "== compare"
"$qllm" compare "$model" "$out" --prompt "$prompt" --max-new-tokens 32
