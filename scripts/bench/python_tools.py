#!/usr/bin/env python3
"""Times the Python Vahadane normalizer that vahanorm replaces (StainTools with SPAMS from
spams-bin) on the same 512x512 tile, for the side-by-side in docs/performance.md.
Run by scripts/bench-python-tools.sh inside a throwaway virtual environment."""
import statistics
import sys
import time

import numpy as np
import staintools


def read_png(path):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def main(target_path, tile_path, runs):
    target = read_png(target_path)
    tile = read_png(tile_path)[:512, :512]
    norm = staintools.StainNormalizer(method="vahadane")
    norm.fit(target)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        # Per-tile estimation + transform: transform() estimates the tile's own stains first.
        out = norm.transform(tile)
        times.append(time.perf_counter() - t0)
    assert out.shape == tile.shape and np.isfinite(out).all()
    print(f"| StainTools {staintools.__version__ if hasattr(staintools, '__version__') else ''} (SPAMS) "
          f"| per-tile estimation + transform, 512x512 | {statistics.median(times) * 1000:.0f} ms "
          f"(median of {runs}, min {min(times) * 1000:.0f}) |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10)
