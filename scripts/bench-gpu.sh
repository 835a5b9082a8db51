#!/usr/bin/env bash
# Builds the GPU benchmark (Release, for this machine's GPU) and runs it; prints a markdown
# table. Arguments go to the benchmark (vahanorm_bench_gpu --help):
#
#   scripts/bench-gpu.sh                    # (a) per-tile, (b) device-resident, (c) pipelined
#   scripts/bench-gpu.sh --quick
#   scripts/bench-gpu.sh --only a --tiles 512
#
# Environment: VN_BUILD_DIR (default build-bench-gpu), VN_CUDA_ARCHS (default: native when a
# GPU is visible, else 90), VN_JOBS. Shares the dependency handling of scripts/device-check.sh.
set -uo pipefail
# shellcheck source=device-check.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/device-check.sh"

build=${VN_BUILD_DIR:-$vn_repo/build-bench-gpu}
if [[ -z ${VN_CUDA_ARCHS:-} ]]; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then VN_CUDA_ARCHS=native; else VN_CUDA_ARCHS=90; fi
fi
export VN_CUDA_ARCHS
mkdir -p "$build"
vn_configure "$build" -DVAHANORM_BUILD_TESTS=OFF || exit $?
cmake --build "$build" -j "${VN_JOBS:-$(nproc)}" --target vahanorm_bench_gpu >"$build/device-check-build.log" 2>&1 || {
    tail -40 "$build/device-check-build.log" >&2
    vn_note "build failed (full log: $build/device-check-build.log)"
    exit 1
}
exec "$build/cuda/vahanorm_bench_gpu" "$@"
