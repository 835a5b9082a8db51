#!/usr/bin/env bash
# Whole-slide benchmark (docs/performance.md): the vahanorm executable with its defaults, against
# a libvips re-encode and against the codec floor, side by side in one hyperfine run.
#
# Inputs, SIZE x SIZE (made here, kept in WORK when given):
#   islands   real H&E tiles from SHARED/tiles arranged as tissue islands on glass, written by
#             `vips tiffsave --tile --pyramid --compression jpeg --Q 90` (libvips writes Q >= 90
#             as RGB JPEG without chroma subsampling): a generic pyramidal TIFF;
#   synthetic make-synthetic-slide's H&E as a generic tiled TIFF;
#   svs       the same synthetic pixels as an Aperio SVS (libvips reads it through OpenSlide).
# Commands, for each input:
#   vahanorm  vahanorm apply IN --target t.json -o out.tif --threads T --quality Q
#   floor     the same with --no-normalize: JPEG decode of every level-0 tile and JPEG encode of
#             the same pixels into the same pyramid, with the same code, no estimate, no transform
#   vips      VIPS_CONCURRENCY=T vips tiffsave IN v.tif --tile --pyramid --compression jpeg --Q Q
#             --tile-width 256 --tile-height 256
# Every timed command runs under /usr/bin/time, which records its peak RSS; vahanorm's --report
# gives the estimate's wall time and the per-stage CPU seconds of its last run.
# Prints a Markdown summary (also WORK/summary.md).
#
# usage: scripts/bench-slide.sh [BUILD_DIR]
# env:   SIZE=16384 THREADS=2 QUALITY=85 RUNS=3 WORK=<kept folder> SHARED=../shared/data
#        RSS_SIZE=<n>: also run the memory test (tests/io/slide_checks_rss.py) on an n x n slide
#        BASELINE=<another vahanorm executable>: also time it (as "baseline", same arguments) in the
#        same hyperfine run, to compare two builds side by side
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD_DIR:-$root/build}}
vahanorm=$build/app/vahanorm
synth=$build/io/make-synthetic-slide
SIZE=${SIZE:-16384}
THREADS=${THREADS:-2}
QUALITY=${QUALITY:-85}
RUNS=${RUNS:-3}
SHARED=${SHARED:-$root/../shared/data}
PYTHON=${PYTHON:-/usr/bin/python3}

for tool in "$vahanorm" "$synth"; do
    [[ -x $tool ]] || { echo "bench-slide: $tool not built (cmake --build $build)" >&2; exit 69; }
done
[[ -z ${BASELINE:-} || -x $BASELINE ]] || { echo "bench-slide: BASELINE=$BASELINE is not an executable" >&2; exit 66; }
for tool in hyperfine vips /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-slide: $tool not found" >&2; exit 69; }
done
[[ -d $SHARED/tiles ]] || { echo "bench-slide: no H&E tiles in $SHARED/tiles" >&2; exit 66; }

if [[ -n ${WORK:-} ]]; then
    work=$(mkdir -p "$WORK" && cd "$WORK" && pwd)
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/vahanorm-bench-slide.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

islands=$work/islands-$SIZE.tif
synthetic=$work/synthetic-$SIZE.tif
svs=$work/synthetic-$SIZE.svs
if [[ ! -s $islands ]]; then
    echo "== $islands: real H&E tiles as tissue islands on glass" >&2
    "$PYTHON" "$root/scripts/bench/make_islands.py" "$SHARED/tiles" "$work/islands.raw" --size "$SIZE" >&2
    vips rawload "$work/islands.raw" "$work/islands.v" "$SIZE" "$SIZE" 3
    vips tiffsave "$work/islands.v" "$islands" --tile --pyramid --compression jpeg --Q 90 \
        --tile-width 256 --tile-height 256 --xres 4000 --yres 4000 --resunit cm
    rm -f "$work/islands.raw" "$work/islands.v"
fi
for f in "$synthetic:tiff" "$svs:svs"; do
    if [[ ! -s ${f%%:*} ]]; then
        echo "== ${f%%:*}: synthetic H&E" >&2
        "$synth" "${f%%:*}" --width "$SIZE" --height "$SIZE" --quality 90 --threads "$THREADS" --format "${f##*:}" >&2
    fi
done
[[ -s $work/t.json ]] || "$vahanorm" fit --ref "$SHARED/tiles/tiatoolbox_target_image.png" -o "$work/t.json" -q

# name -> command; each under /usr/bin/time appending its peak RSS (KiB) to WORK/NAME.rss.
names=()
cmds=()
add() {
    names+=("$1")
    cmds+=("/usr/bin/time -f %M -a -o $work/$1.rss $2")
    rm -f "$work/$1.rss"
}
for input in islands synthetic svs; do
    case $input in
        islands) in=$islands ;;
        synthetic) in=$synthetic ;;
        svs) in=$svs ;;
    esac
    common="apply $in --target $work/t.json --threads $THREADS --quality $QUALITY"
    add "vahanorm-$input" "$vahanorm $common -o $work/out-$input.tif --report $work/report-$input.json -q"
    add "floor-$input" "$vahanorm $common -o $work/floor-$input.tif --no-normalize --report $work/floor-$input.json -q"
    if [[ -n ${BASELINE:-} ]]; then
        add "baseline-$input" "$BASELINE $common -o $work/base-$input.tif --report $work/base-$input.json -q"
    fi
    add "vips-$input" "env VIPS_CONCURRENCY=$THREADS vips tiffsave $in $work/vips-$input.tif --tile --pyramid --compression jpeg --Q $QUALITY --tile-width 256 --tile-height 256"
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== hyperfine ($RUNS runs each, load average before: $load_before)" >&2
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/hyperfine.json" "${args[@]}" >&2
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

rss_json=""
if [[ -n ${RSS_SIZE:-} ]]; then
    echo "== memory test ($RSS_SIZE x $RSS_SIZE)" >&2
    rss_json=$("$PYTHON" "$root/tests/io/slide_checks_rss.py" --vahanorm "$vahanorm" --synth "$synth" \
        --size "$RSS_SIZE" --threads "$THREADS" | head -n 1)
fi

"$PYTHON" - "$work" "$SIZE" "$THREADS" "$QUALITY" "$load_before" "$load_after" "$rss_json" <<'EOF' | tee "$work/summary.md"
import json, os, sys
work, size, threads, quality, load_before, load_after, rss_json = sys.argv[1:8]
size = int(size)
hf = {r["command"]: r for r in json.load(open(os.path.join(work, "hyperfine.json")))["results"]}
mpx = size * size / 1e6

def rss(name):
    vals = [int(l) for l in open(os.path.join(work, name + ".rss")) if l.strip().isdigit()]
    return max(vals) / 1024 if vals else float("nan")

labels = {"islands": "real H&E islands, generic TIFF (RGB JPEG Q90)",
          "synthetic": "synthetic H&E, generic TIFF",
          "svs": "synthetic H&E, Aperio SVS (vips: OpenSlide)"}
print(f"### Whole slides: {size} x {size} px, JPEG Q{quality} output, {threads} threads")
print()
print(f"Machine: {os.cpu_count()} CPUs; load average {load_before} before, {load_after} after the run. "
      f"hyperfine, {hf['vahanorm-svs'].get('times') and len(hf['vahanorm-svs']['times'])} runs each after a warm-up.")
print()
print("| input | command | mean s | +- s | CPU s | Mpx/s | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for inp in ("islands", "synthetic", "svs"):
    for tool, what in (("vahanorm", "vahanorm apply"), ("baseline", "baseline vahanorm apply"),
                       ("floor", "codec floor (--no-normalize)"), ("vips", "vips tiffsave")):
        r = hf.get(f"{tool}-{inp}")
        if r is None:
            continue
        print(f"| {labels[inp]} | {what} | {r['mean']:.2f} | {r['stddev'] or 0:.2f} | {r['user'] + r['system']:.2f} "
              f"| {mpx / r['mean']:.0f} | {rss(f'{tool}-{inp}'):.0f} |")
print()
print("| input | vahanorm / floor (goal <= 1.15) | vahanorm / vips (goal: TIFF <= 0.85, SVS <= 0.35) | estimate / end to end (goal <= 0.10) | peak RSS (goal < 200 MiB) |")
print("|---|---|---|---|---|")
for inp in ("islands", "synthetic", "svs"):
    v, f, b = hf[f"vahanorm-{inp}"]["mean"], hf[f"floor-{inp}"]["mean"], hf[f"vips-{inp}"]["mean"]
    rep = json.load(open(os.path.join(work, f"report-{inp}.json")))["inputs"][0]
    est = rep["timings_s"].get("estimate", float("nan"))
    goal = 0.35 if inp == "svs" else 0.85
    ok = lambda c: "met" if c else "**not met**"
    print(f"| {inp} | {v / f:.2f} ({ok(v / f <= 1.15)}) | {v / b:.2f} ({ok(v / b <= goal)}) "
          f"| {est:.2f} s = {est / v:.1%} ({ok(est / v <= 0.10)}) | {rss(f'vahanorm-{inp}'):.0f} ({ok(rss(f'vahanorm-{inp}') < 200)}) |")
if any(k.startswith("baseline-") for k in hf):
    print()
    print("| input | vahanorm / baseline (same run) | vahanorm CPU s / baseline CPU s | peak RSS MiB, vahanorm / baseline |")
    print("|---|---|---|---|")
    for inp in ("islands", "synthetic", "svs"):
        v, b = hf[f"vahanorm-{inp}"], hf[f"baseline-{inp}"]
        print(f"| {inp} | {v['mean'] / b['mean']:.3f} | {(v['user'] + v['system']) / (b['user'] + b['system']):.3f} "
              f"| {rss(f'vahanorm-{inp}'):.0f} / {rss(f'baseline-{inp}'):.0f} |")
print()
print("Per stage, last vahanorm and floor run (CPU seconds summed over threads; streaming wall = level 0 streamed "
      "and the pyramid written):")
print()
print("| input | run | reader | estimate wall | read + decode | normalise | encode | write | streaming wall |")
print("|---|---|---|---|---|---|---|---|---|")
for inp in ("islands", "synthetic", "svs"):
    for kind, fname in (("vahanorm", f"report-{inp}.json"), ("floor", f"floor-{inp}.json")):
        rep = json.load(open(os.path.join(work, fname)))["inputs"][0]
        t = rep["timings_s"]
        print(f"| {inp} | {kind} | {rep['slide']['reader']} | {t.get('estimate', 0):.2f} | {t['read']:.2f} "
              f"| {t['normalize']:.2f} | {t['encode']:.2f} | {t['write']:.2f} | {t['wall']:.2f} |")
if rss_json:
    r = json.loads(rss_json)
    print()
    print(f"Memory test: {r['size']} x {r['size']} px ({r['input_bytes'] / 2**20:.0f} MiB JPEG input), `vahanorm apply` in "
          f"{r['normalize_seconds']:.1f} s with peak RSS **{r['peak_rss_mib']:.0f} MiB** (limit {r['limit_mib']:.0f} MiB).")
EOF
