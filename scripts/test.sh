#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole test suite: the C++
# and CLI tests (ctest), then the Python package's (pytest; docs/python.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DVAHANORM_WERROR=ON "$@"
ctest --test-dir build --output-on-failure -j "$(nproc)"
scripts/test-python.sh
