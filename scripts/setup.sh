#!/usr/bin/env bash
# Installs everything qllm needs to build and test on Debian, then exits. Idempotent: packages
# already present are skipped, and a second run changes nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libsimdjson-dev libcli11-dev libfmt-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev          # libFuzzer and the sanitizer runtimes
  python3 python3-pip
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python references for the interoperability tests (safetensors' own reader and writer,
# huggingface_hub's shard splitting, ml_dtypes' bfloat16/float8 casts).
# The tests skip, saying so, if these cannot be installed.
py_refs=(safetensors numpy ml_dtypes huggingface_hub)
if ! python3 -c "import safetensors, numpy, ml_dtypes, huggingface_hub" 2>/dev/null; then
  python3 -m pip install -q "${py_refs[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${py_refs[@]}" ||
    echo "setup: could not install safetensors/numpy for Python; those tests will skip" >&2
fi
