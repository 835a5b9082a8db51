#!/usr/bin/env bash
# Side by side with the Python tool vahanorm replaces: StainTools' Vahadane normalizer (SPAMS
# from the spams-bin wheel) against vahanorm on the same 512x512 tile, in one run.
# Installs the Python tools into a throwaway virtual environment (PyPI): benchmark tooling
# only, never a dependency of vahanorm.
#   scripts/bench-python-tools.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tiles=${VAHANORM_SHARED_DATA:-../shared/data}/tiles
venv=${VAHANORM_BENCH_VENV:-/tmp/vahanorm-bench-venv}
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q staintools spams-bin numpy opencv-python-headless
fi
target=$tiles/tiatoolbox_target_image.png
tile=$tiles/histolab_tcga-lung-rgb.png
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| tool | what | time |"
echo "|---|---|---|"
OMP_NUM_THREADS=2 "$venv/bin/python" scripts/bench/python_tools.py "$target" "$tile" 10
"$build/app/vahanorm" -q fit --ref "$target" -o "$work/target.json"
# vahanorm in memory (no codec), the same work: estimate the tile's stains, then transform.
"$build/tests/bench/bench_tiles" "$tile" | awk -F'|' '$2 ~ /512/ {printf "| vahanorm, %s thread(s) | per-tile estimation + transform, 512x512 | %s ms |\n", $3, $5}'
