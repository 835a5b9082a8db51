#!/usr/bin/env python3
"""One Python stain normalizer, timed in a fresh process (scripts/bench-python.sh runs it once
per tool and prints the table):

    python_tools.py import TOOL                          import time (s) and RSS after import (KB)
    python_tools.py run TOOL TARGET OUTDIR RUNS TILE...  per-tile estimation + transform

TOOL: vahanorm (the package, threads=1, or vahanorm:N for N threads), staintools (StainTools'
Vahadane normalizer, SPAMS from spams-bin) or wsi-normalizer (its VahadaneNormalizer, without
the torch its package __init__ imports for another normalizer). Each fits
the target once, then for every tile estimates the tile's stains and transforms it (what
StainTools' transform() does), RUNS times per tile; prints one JSON line. vahanorm's outputs
are written to OUTDIR as PNG for comparison with the CLI's.
"""
import json
import resource
import statistics
import sys
import time


def maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def do_import(tool):
    t0 = time.perf_counter()
    if tool == "vahanorm":
        import vahanorm  # noqa: F401
    elif tool == "staintools":
        import staintools  # noqa: F401
    elif tool == "wsi-normalizer":
        # Its package __init__ also imports torch (for a GPU variant); PyTorch's own index is
        # out of reach here, so the package is entered without running that __init__: the
        # Vahadane normalizer itself needs numpy, OpenCV and SPAMS only.
        import importlib.util
        import types

        spec = importlib.util.find_spec("wsi_normalizer")
        pkg = types.ModuleType("wsi_normalizer")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["wsi_normalizer"] = pkg
        import wsi_normalizer.norm_tools  # noqa: F401
    else:
        raise SystemExit(f"unknown tool {tool}")
    return time.perf_counter() - t0


def main():
    mode, tool = sys.argv[1], sys.argv[2]
    name, _, threads = tool.partition(":")
    seconds = do_import(name)
    if mode == "import":
        print(json.dumps({"tool": tool, "import_s": seconds, "rss_kb": maxrss_kb()}))
        return
    target_path, outdir, runs, tiles = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:]
    if name == "vahanorm":
        import vahanorm

        read = vahanorm.read_image
        norm = vahanorm.Normalizer(target=vahanorm.fit(read(target_path), threads=int(threads or 1)),
                                   threads=int(threads or 1))
        transform = norm.transform
    else:
        import cv2

        def read(path):
            return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

        if name == "staintools":
            import staintools

            norm = staintools.StainNormalizer(method="vahadane")
        else:
            from wsi_normalizer.norm_tools import VahadaneNormalizer

            norm = VahadaneNormalizer()
        norm.fit(read(target_path))
        transform = norm.transform
    images = [read(t) for t in tiles]
    per_tile, cpu = [], []
    for path, img in zip(tiles, images):
        for _ in range(runs):
            c0 = time.process_time()
            t0 = time.perf_counter()
            out = transform(img)
            per_tile.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        assert out.shape == img.shape and out.dtype.name == "uint8"
        if name == "vahanorm":
            vahanorm.write_image(f"{outdir}/{path.rsplit('/', 1)[-1]}", out)
    print(json.dumps({"tool": tool, "per_tile_ms": 1000 * statistics.median(per_tile),
                      "min_ms": 1000 * min(per_tile),
                      "cpu_ms": 1000 * statistics.median(cpu), "calls": len(per_tile), "peak_rss_kb": maxrss_kb()}))


if __name__ == "__main__":
    main()
