#!/usr/bin/env python3
"""Memory bound of the slide pipeline: generate a large synthetic slide (default 40,000 x 40,000
px, tiled JPEG pyramid) and normalise it with the vahanorm executable and its defaults, failing
when its peak RSS (/usr/bin/time) passes the limit.

    slide_checks_rss.py --vahanorm PATH --synth PATH [--size 40000] [--limit-mib 200] [--threads 2] [--keep]

Prints one JSON line with the figures. Exit status 0 when the peak RSS is under the limit and
the output opens in OpenSlide with the input's size.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vahanorm", required=True)
    ap.add_argument("--synth", required=True, help="make-synthetic-slide")
    ap.add_argument("--size", type=int, default=40000)
    ap.add_argument("--limit-mib", type=float, default=200.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    work = a.workdir or tempfile.mkdtemp(prefix="vahanorm-rss-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, f"synthetic-{a.size}.svs")
    dst = os.path.join(work, f"normalised-{a.size}.svs")
    rss = os.path.join(work, "rss.txt")
    try:
        t0 = time.monotonic()
        p = subprocess.run([a.synth, src, "--width", str(a.size), "--height", str(a.size), "--quality", "85",
                            "--threads", str(a.threads)], capture_output=True, text=True)
        gen_s = time.monotonic() - t0
        if p.returncode != 0:
            print(f"FAIL: generator exited {p.returncode}: {p.stderr.strip()}")
            return 1
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, a.vahanorm, "apply", src, "-o", dst,
                            "--threads", str(a.threads), "--quality", "85", "--report", os.path.join(work, "r.json")],
                           capture_output=True, text=True)
        norm_s = time.monotonic() - t0
        if p.returncode != 0:
            print(f"FAIL: vahanorm exited {p.returncode}: {p.stderr.strip()}")
            return 1
        peak = int(open(rss).read().split()[-1]) / 1024.0
        rec = json.load(open(os.path.join(work, "r.json")))["inputs"][0]
        ok = peak < a.limit_mib
        import openslide  # after the run: only the checks need it

        s = openslide.OpenSlide(dst)
        size_ok = s.dimensions == (a.size, a.size)
        print(json.dumps({"size": a.size, "threads": a.threads, "generate_seconds": round(gen_s, 1),
                          "normalize_seconds": round(norm_s, 1), "mpx_per_second": round(a.size * a.size / 1e6 / norm_s, 1),
                          "streaming_mpx_per_second": rec.get("mpx_per_second"),
                          "peak_rss_mib": round(peak, 1), "limit_mib": a.limit_mib,
                          "input_bytes": os.path.getsize(src), "output_bytes": os.path.getsize(dst),
                          "levels": s.level_count}))
        if not ok:
            print(f"FAIL: peak RSS {peak:.0f} MiB >= {a.limit_mib:.0f} MiB")
        if not size_ok:
            print(f"FAIL: output is {s.dimensions}, not {a.size}x{a.size}")
        return 0 if ok and size_ok else 1
    finally:
        if not a.keep and not a.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
