#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 60 s total).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scripts/build.sh fuzz
targets=(build/fuzz/tests/fuzz/fuzz_*)
per=$((seconds / ${#targets[@]}))
for t in "${targets[@]}"; do
  name=$(basename "$t")
  corpus="build/fuzz/corpus-$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/${name#fuzz_}"
  echo "fuzz: $name for ${per}s"
  "$t" -max_total_time="$per" -rss_limit_mb=2048 -print_final_stats=1 "$corpus" $( [ -d "$seeds" ] && echo "$seeds" )
done
