#!/usr/bin/env bash
# Tile benchmark. Not a test: figures go to docs/performance.md.
#   scripts/bench-tiles.sh [BUILD_DIR]
#   BASELINE=<another vahanorm executable>: also time it in the same hyperfine runs (end to end and
#   the 1,000-tile batch), to compare two builds side by side.
# 1. In-memory: per-tile estimation + transform, fixed-model transform, transform throughput
#    next to memcpy of the same bytes (bench_tiles, crops of real tiles from ../shared/data).
# 2. End to end through the CLI (decode + normalize + encode), 1 and 2 threads (hyperfine).
# 3. Peak memory of a 1,000-tile batch against a single tile (/usr/bin/time -v).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/app/vahanorm
tiles=${VAHANORM_SHARED_DATA:-../shared/data}/tiles
[[ -x $bin ]] || { echo "build first: scripts/build.sh" >&2; exit 1; }
[[ -z ${BASELINE:-} || -x $BASELINE ]] || { echo "bench-tiles: BASELINE=$BASELINE is not an executable" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "## In memory (median of repeated runs; real tiles cropped to 256/512/1024 px)"
"$build/tests/bench/bench_tiles" "$tiles/henorm_example1.png" "$tiles/openslide-OS-1_hamamatsu-ndpi_crop.png" \
  "$tiles/tiatoolbox_target_image.png" "$tiles/histolab_high-nuclei-score-level0.png"

echo
echo "## End to end through the CLI: one 512x512 PNG tile (decode + estimate + transform + encode)"
"$bin" -q fit --ref "$tiles/tiatoolbox_target_image.png" -o "$work/target.json"
tile=$tiles/histolab_tcga-lung-rgb.png
e2e=("$bin -q --threads 1 apply $tile --target $work/target.json -o $work/o1.png"
     "$bin -q --threads 2 apply $tile --target $work/target.json -o $work/o2.png")
if [[ -n ${BASELINE:-} ]]; then
  e2e+=("$BASELINE -q --threads 1 apply $tile --target $work/target.json -o $work/b1.png"
        "$BASELINE -q --threads 2 apply $tile --target $work/target.json -o $work/b2.png")
fi
hyperfine -N --warmup 3 --runs 30 --export-markdown "$work/e2e.md" "${e2e[@]}" >/dev/null
cat "$work/e2e.md"

echo
echo "## A 1,000-tile batch (512x512 PNG), 2 threads: throughput and peak memory against one tile"
mkdir -p "$work/in"
for i in $(seq -w 0 999); do ln -s "$(realpath "$tile")" "$work/in/t$i.png"; done
/usr/bin/time -v "$bin" -q --threads 2 apply "$work/in/t000.png" --target "$work/target.json" -o "$work/one.png" \
  2>"$work/one.time"
rss_mib() { echo "$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$1") / 1024" | bc -l; }
printf '| run | peak RSS (MiB) | wall (s) | tiles/s |\n|---|---|---|---|\n'
printf '| 1 tile | %.1f | | |\n' "$(rss_mib "$work/one.time")"
# batch LABEL EXECUTABLE NAME: the 1,000 tiles through EXECUTABLE into $work/NAME/, and its row.
batch() {
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v "$2" -q --threads 2 apply "$work"/in/*.png --target "$work/target.json" -o "$work/$3/" \
    2>"$work/$3.time"
  end=$(date +%s.%N)
  printf '| %s | %.1f | %.2f | %.0f |\n' "$1" "$(rss_mib "$work/$3.time")" "$(echo "$end - $start" | bc -l)" \
    "$(echo "1000 / ($end - $start)" | bc -l)"
}
batch "1,000 tiles" "$bin" out
if [[ -n ${BASELINE:-} ]]; then batch "1,000 tiles, baseline" "$BASELINE" base; fi
