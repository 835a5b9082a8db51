#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DVAHANORM_WERROR=ON "$@"
ctest --test-dir build --output-on-failure -j "$(nproc)"
