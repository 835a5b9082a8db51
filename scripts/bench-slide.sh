#!/usr/bin/env bash
# Whole-slide benchmark (docs/slides.md):
#   1. a synthetic H&E slide of SIZE x SIZE pixels (tiled JPEG pyramid at QUALITY), written twice
#      with the same pixels: as Aperio SVS (libvips opens .svs through OpenSlide, `openslideload`)
#      and as a generic tiled TIFF (libvips' fast `tiffload`);
#   2. end to end, measured in one hyperfine run: vahanorm (estimate + normalise + pyramidal JPEG
#      at QUALITY, THREADS threads, vahanorm-slide-bench) against `vips tiffsave --tile --pyramid
#      --compression jpeg --Q QUALITY` re-encoding the same slide with VIPS_CONCURRENCY=THREADS,
#      for both inputs;
#   3. Mpx/s per stage and peak RSS of both, from one more run of each on the TIFF input;
#   4. the memory test: a RSS_SIZE x RSS_SIZE slide normalised under 1 GiB peak RSS.
# Prints a Markdown summary (also written to WORK/summary.md).
#
# usage: scripts/bench-slide.sh [BUILD_DIR]
# env:   SIZE=16000 THREADS=2 QUALITY=85 RUNS=3 RSS_SIZE=40000 SKIP_RSS=0 WORK=<kept folder>
#        NICE=<n>: run the timed commands under `nice -n n` (e.g. -15 as root on a shared machine)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD_DIR:-$root/build}}
bin=$build/io
SIZE=${SIZE:-16000}
THREADS=${THREADS:-2}
QUALITY=${QUALITY:-85}
RUNS=${RUNS:-3}
RSS_SIZE=${RSS_SIZE:-40000}
SKIP_RSS=${SKIP_RSS:-0}
PYTHON=${PYTHON:-/usr/bin/python3}

for tool in "$bin/make-synthetic-slide" "$bin/vahanorm-slide-bench"; do
    [[ -x $tool ]] || { echo "bench-slide: $tool not built (cmake --build $build --target ${tool##*/})" >&2; exit 69; }
done
for tool in hyperfine vips /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-slide: $tool not found" >&2; exit 69; }
done

if [[ -n ${WORK:-} ]]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/vahanorm-bench-slide.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

svs=$work/synthetic-$SIZE.svs
tif=$work/synthetic-$SIZE.tif
echo "== generating $svs and $tif (same pixels)" >&2
for f in "$svs:svs" "$tif:tiff"; do
    "$bin/make-synthetic-slide" "${f%%:*}" --width "$SIZE" --height "$SIZE" --quality "$QUALITY" --threads "$THREADS" \
        --format "${f##*:}" >&2
done

nice_cmd=()
[[ -n ${NICE:-} ]] && nice_cmd=(nice -n "$NICE")
vn() { echo "$bin/vahanorm-slide-bench normalize $1 $work/vahanorm.svs --threads $THREADS --quality $QUALITY"; }
vi() { echo "VIPS_CONCURRENCY=$THREADS vips tiffsave $1 $work/vips.tif --tile --pyramid --compression jpeg --Q $QUALITY --tile-width 256 --tile-height 256"; }

echo "== hyperfine ($RUNS runs each)" >&2
"${nice_cmd[@]}" hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/hyperfine.json" \
    -n vahanorm-svs "$(vn "$svs") >/dev/null 2>&1" -n vips-svs "$(vi "$svs")" \
    -n vahanorm-tiff "$(vn "$tif") >/dev/null 2>&1" -n vips-tiff "$(vi "$tif")" >&2

echo "== stages and peak RSS" >&2
"${nice_cmd[@]}" /usr/bin/time -f '%M' -o "$work/vahanorm.rss" bash -c "$(vn "$tif")" > "$work/vahanorm.json" 2>"$work/vahanorm.log"
"${nice_cmd[@]}" /usr/bin/time -f '%M' -o "$work/vips.rss" bash -c "$(vi "$tif")" 2>>"$work/vips.log"

rss_json=""
if [[ $SKIP_RSS != 1 ]]; then
    echo "== memory test ($RSS_SIZE x $RSS_SIZE)" >&2
    rss_json=$("$PYTHON" "$root/tests/io/slide_checks_rss.py" --bin-dir "$bin" --size "$RSS_SIZE" --threads "$THREADS" |
        head -n 1)
fi

"$PYTHON" - "$work" "$SIZE" "$THREADS" "$QUALITY" "${NICE:-0}" "$rss_json" <<'EOF' | tee "$work/summary.md"
import json, os, sys
work, size, threads, quality, nice, rss_json = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
hf = {r["command"]: r for r in json.load(open(os.path.join(work, "hyperfine.json")))["results"]}
rep = json.load(open(os.path.join(work, "vahanorm.json")))
rss_vn = int(open(os.path.join(work, "vahanorm.rss")).read().split()[-1]) / 1024
rss_vi = int(open(os.path.join(work, "vips.rss")).read().split()[-1]) / 1024
mpx = size * size / 1e6
print(f"### Whole-slide benchmark: {size} x {size} synthetic H&E, JPEG Q{quality}, {threads} threads")
print()
print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end of the run"
      + (f"; timed commands run at nice {nice}" if nice != "0" else "") + ".")
print()
print("| input | command | mean s | +- s | CPU s (user + sys) | Mpx/s |")
print("|---|---|---|---|---|---|")
for kind, label in (("svs", "Aperio SVS (vips: openslideload)"), ("tiff", "generic TIFF (vips: tiffload)")):
    for tool, what in (("vahanorm", "vahanorm: estimate + normalise + pyramid"), ("vips", "vips tiffsave --tile --pyramid")):
        r = hf[f"{tool}-{kind}"]
        print(f"| {label} | {what} | {r['mean']:.2f} | {r['stddev'] or 0:.2f} | {r['user'] + r['system']:.2f} | {mpx / r['mean']:.0f} |")
print()
for kind in ("svs", "tiff"):
    a, b = hf[f"vahanorm-{kind}"], hf[f"vips-{kind}"]
    print(f"- {kind}: vahanorm / vips time **{a['mean'] / b['mean']:.2f}**, CPU time "
          f"{(a['user'] + a['system']) / (b['user'] + b['system']):.2f} (target: time at most 0.5)")
print()
print(f"Peak RSS on the TIFF input: vahanorm {rss_vn:.0f} MiB, vips {rss_vi:.0f} MiB.")
print()
st, sm = rep["stage_seconds"], rep["stage_mpx_per_second"]
print(f"vahanorm stages on the TIFF input (CPU seconds summed over threads; Mpx/s = level-0 Mpx / stage seconds), "
      f"reader {rep['reader']}, colour table {str(rep['colour_lut']).lower()}:")
print()
print("| estimate (wall) | read + decode | normalise | encode | write (pyramid, file) | streaming wall | streaming Mpx/s |")
print("|---|---|---|---|---|---|---|")
print(f"| {rep['estimate_seconds']:.2f} s | {st['read']:.2f} s, {sm['read']:.0f} Mpx/s | {st['normalize']:.2f} s, {sm['normalize']:.0f} Mpx/s "
      f"| {st['encode']:.2f} s, {sm['encode']:.0f} Mpx/s | {st['write']:.2f} s, {sm['write']:.0f} Mpx/s "
      f"| {rep['wall_seconds']:.2f} s | {rep['mpx_per_second']:.0f} |")
if rss_json:
    r = json.loads(rss_json)
    print()
    print(f"Memory test: {r['size']} x {r['size']} px ({r['input_bytes'] / 2**20:.0f} MiB JPEG input), normalised in "
          f"{r['normalize_seconds']:.1f} s ({r['mpx_per_second']:.0f} Mpx/s) with peak RSS **{r['peak_rss_mib']:.0f} MiB** "
          f"(limit {r['limit_mib']:.0f} MiB), {r['levels']} levels.")
EOF
