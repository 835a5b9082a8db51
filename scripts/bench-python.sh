#!/usr/bin/env bash
# The Python package against the Python tools it replaces, in one run, on the same 512 x 512
# tiles (crops of the shared real H&E tiles) and the same target: per-tile estimation +
# transform in-process at 1 thread (StainTools' Vahadane with SPAMS from spams-bin,
# wsi-normalizer's VahadaneNormalizer, vahanorm), plus the import time and peak RSS of each, a
# fresh process each; and whether vahanorm's outputs are byte-identical to the CLI's.
#   scripts/bench-python.sh [BUILD_DIR]     (BUILD_DIR: where the CLI was built, default build)
# The tools and the package go into a virtual environment (default build/bench-venv, or
# $VAHANORM_BENCH_VENV) from PyPI: benchmark tooling only, never a dependency of vahanorm.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tiles=${VAHANORM_SHARED_DATA:-../shared/data}/tiles
venv=${VAHANORM_BENCH_VENV:-build/bench-venv}
if [[ ! -x $venv/bin/python ]]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q staintools spams-bin wsi-normalizer opencv-python-headless scikit-build-core nanobind
fi
# The package as `pip install ./python` builds it, in a build folder of its own.
"$venv/bin/pip" install -q --no-build-isolation --config-settings=build-dir="$PWD/build/python-bench" ./python
py=$venv/bin/python
cores=$(getconf _NPROCESSORS_ONLN)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1   # one thread for every tool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tiles" "$work/py" "$work/cli"
target=$tiles/tiatoolbox_target_image.png
names=(histolab_tcga-lung-rgb henorm_example1 histolab_high-nuclei-score-level0
       histolab_medium-nuclei-score-level0 openslide-OS-1_hamamatsu-ndpi_crop vahadane_source1)
for n in "${names[@]}"; do
  "$py" -c 'import sys, vahanorm; vahanorm.write_image(sys.argv[2], vahanorm.read_image(sys.argv[1])[:512, :512])' \
    "$tiles/$n.png" "$work/tiles/$n.png"
done
crops=("$work"/tiles/*.png)

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($cores cores)"
results=$work/results.jsonl
for tool in vahanorm staintools wsi-normalizer; do
  for _ in 1 2 3 4 5; do "$py" scripts/bench/python_tools.py import "$tool"; done >>"$results"
done
"$py" scripts/bench/python_tools.py run vahanorm "$target" "$work/py" 20 "${crops[@]}" >>"$results"
"$py" scripts/bench/python_tools.py run vahanorm:2 "$target" "$work/py" 20 "${crops[@]}" >>"$results"
"$py" scripts/bench/python_tools.py run staintools "$target" "$work/py" 1 "${crops[@]}" >>"$results"
"$py" scripts/bench/python_tools.py run wsi-normalizer "$target" "$work/py" 1 "${crops[@]}" >>"$results"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# The CLI on the same crops and target: vahanorm's outputs must be the same bytes.
"$build/app/vahanorm" -q fit --ref "$target" -o "$work/target.json"
"$build/app/vahanorm" -q apply "${crops[@]}" --target "$work/target.json" -o "$work/cli/" --threads 1
same=0
for n in "${names[@]}"; do cmp -s "$work/py/$n.png" "$work/cli/$n.png" && same=$((same + 1)); done
echo "vahanorm outputs byte-identical to the CLI's: $same of ${#names[@]} tiles"

"$py" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
imp = {}
for r in rows:
    if "import_s" in r:
        imp.setdefault(r["tool"], []).append(r)
runs = {r["tool"]: r for r in rows if "per_tile_ms" in r}
base = runs["staintools"]["per_tile_ms"]
print()
print("| tool | per 512 x 512 tile, estimation + transform (wall) | vs StainTools | CPU time per tile | import | RSS after import | peak RSS |")
print("|---|---|---|---|---|---|---|")
labels = {"vahanorm": "vahanorm (package), 1 thread", "vahanorm:2": "vahanorm (package), 2 threads",
          "staintools": "StainTools 2.1 (SPAMS, spams-bin)", "wsi-normalizer": "wsi-normalizer 1.0 (Vahadane)"}
for tool in ("vahanorm", "vahanorm:2", "staintools", "wsi-normalizer"):
    r = runs[tool]
    i = imp[tool.split(":")[0]]
    print(f"| {labels[tool]} | {r['per_tile_ms']:.1f} ms (median of {r['calls']}, min {r['min_ms']:.1f}) "
          f"| {base / r['per_tile_ms']:.0f}x | {r['cpu_ms']:.1f} ms | {1000 * statistics.median(x['import_s'] for x in i):.0f} ms "
          f"| {statistics.median(x['rss_kb'] for x in i) / 1024:.0f} MB | {r['peak_rss_kb'] / 1024:.0f} MB |")
PY
