#!/usr/bin/env bash
# Command 2 of the README: install, build, and run the whole test suite.
#   scripts/test.sh            release build, all tests
#   scripts/test.sh asan       the same suite under AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh
scripts/build.sh "$preset"
ctest --preset "$preset" -j "$(nproc)" --timeout 900
