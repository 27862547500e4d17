#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 60 s total).
# Each target starts from its committed seeds (tests/fuzz/seeds/<name without fuzz_>) plus the
# corpus grown by earlier runs in build/fuzz. A crash, leak or sanitizer report fails the script;
# the input that caused it is saved as build/fuzz/crash-* (or leak-*, timeout-*).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scripts/build.sh fuzz
shopt -s nullglob
targets=(build/fuzz/tests/fuzz/fuzz_*)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz targets were built" >&2
  exit 1
fi
per=$((seconds / ${#targets[@]}))
((per >= 1)) || per=1  # -max_total_time=0 would mean "run forever"
for t in "${targets[@]}"; do
  name=$(basename "$t")
  corpus="build/fuzz/corpus-$name"
  mkdir -p "$corpus"
  dirs=("$corpus")
  seeds="tests/fuzz/seeds/${name#fuzz_}"
  [ -d "$seeds" ] && dirs+=("$seeds")
  echo "fuzz: $name for ${per}s (corpus: ${dirs[*]})"
  if ! "$t" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix=build/fuzz/ "${dirs[@]}"; then
    echo "fuzz: $name FAILED; reproduce with: $t build/fuzz/<crash file>" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${per}s without a finding"
