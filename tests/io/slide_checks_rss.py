#!/usr/bin/env python3
"""Memory bound of the slide pipeline: generate a large synthetic slide (default 40,000 x 40,000
px, tiled JPEG pyramid) and normalise it, failing when the normaliser's peak RSS passes the limit.

    slide_checks_rss.py --bin-dir BUILD/io [--size 40000] [--limit-mib 1024] [--threads 2] [--keep]

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


def run_measured(cmd):
    """Runs cmd; returns (exit status, seconds, stdout, stderr). The normaliser reports its own
    peak RSS (getrusage(RUSAGE_SELF).ru_maxrss) in its JSON output."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, time.monotonic() - t0, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, help="folder with make-synthetic-slide and vahanorm-slide-bench")
    ap.add_argument("--size", type=int, default=40000)
    ap.add_argument("--limit-mib", type=float, default=1024.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    work = a.workdir or tempfile.mkdtemp(prefix="vahanorm-rss-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, f"synthetic-{a.size}.svs")
    dst = os.path.join(work, f"normalised-{a.size}.svs")
    try:
        gen = [os.path.join(a.bin_dir, "make-synthetic-slide"), src, "--width", str(a.size), "--height", str(a.size),
               "--quality", "85", "--threads", str(a.threads)]
        rc, gen_s, out, err = run_measured(gen)
        if rc != 0:
            print(f"FAIL: generator exited {rc}: {err.strip()}")
            return 1
        bench = [os.path.join(a.bin_dir, "vahanorm-slide-bench"), "normalize", src, dst, "--threads", str(a.threads),
                 "--quality", "85"]
        rc, norm_s, out, err = run_measured(bench)
        if rc != 0:
            print(f"FAIL: normaliser exited {rc}: {err.strip()}")
            return 1
        report = json.loads(out)
        peak = float(report["peak_rss_mib"])
        ok = peak < a.limit_mib
        import openslide  # after the run: only the checks need it

        s = openslide.OpenSlide(dst)
        size_ok = s.dimensions == (a.size, a.size)
        print(json.dumps({"size": a.size, "threads": a.threads, "generate_seconds": round(gen_s, 1),
                          "normalize_seconds": round(norm_s, 1), "mpx_per_second": report["mpx_per_second"],
                          "peak_rss_mib": peak, "limit_mib": a.limit_mib,
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
