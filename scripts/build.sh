#!/usr/bin/env bash
# Installs dependencies and builds vahanorm (Release) into ./build.
# Extra CMake arguments are passed through, e.g. scripts/build.sh -DVAHANORM_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
