#!/usr/bin/env python3
"""Writes SIZE x SIZE raw RGB pixels (8-bit, interleaved) of real H&E arranged as tissue islands
on glass, for scripts/bench-slide.sh: seeded elliptical islands covering roughly a third of the
slide, filled with 256 x 256 crops (in the 8 flips and rotations) of the H&E tiles in TILES_DIR,
on a slightly noisy glass background. libvips turns the raw file into the pyramidal TIFF.

    make_islands.py TILES_DIR OUT.raw [--size 16384] [--seed 1]
"""
import argparse
import os

import numpy as np
from PIL import Image

H_AND_E = [  # real H&E tiles only (no IHC, no near-blank edge cases)
    "tiatoolbox_target_image.png", "henorm_example1.png", "histolab_tcga-lung-rgb.png",
    "histolab_high-nuclei-score-level0.png", "histolab_medium-nuclei-score-level0.png",
    "openslide-OS-1_hamamatsu-ndpi_crop.png", "torchstain_source.png", "torchstain_target.png",
]


def crops(tiles_dir, cell, rng):
    out = []
    for name in H_AND_E:
        path = os.path.join(tiles_dir, name)
        if not os.path.exists(path):
            continue
        a = np.asarray(Image.open(path).convert("RGB"))
        h, w, _ = a.shape
        for y in range(0, h - cell + 1, cell):
            for x in range(0, w - cell + 1, cell):
                c = a[y:y + cell, x:x + cell]
                for k in range(4):
                    r = np.rot90(c, k)
                    out.append(np.ascontiguousarray(r))
                    out.append(np.ascontiguousarray(r[:, ::-1]))
    if not out:
        raise SystemExit(f"no H&E tiles found in {tiles_dir}")
    rng.shuffle(out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tiles_dir")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    cell, n = 256, a.size
    rng = np.random.default_rng(a.seed)
    pieces = crops(a.tiles_dir, cell, rng)
    # Islands: ellipses with seeded centres and radii.
    islands = []
    for _ in range(9):
        cx, cy = rng.uniform(0.12, 0.88, 2) * n
        rx, ry = rng.uniform(0.07, 0.2, 2) * n
        islands.append((cx, cy, rx, ry))
    glass = np.array([236, 234, 238], dtype=np.int16)
    out = np.memmap(a.out, dtype=np.uint8, mode="w+", shape=(n, n, 3))
    xs = np.arange(n, dtype=np.float64)
    k = 0
    for y0 in range(0, n, cell):
        h = min(cell, n - y0)
        ys = np.arange(y0, y0 + h, dtype=np.float64)[:, None]
        inside = np.zeros((h, n), dtype=bool)
        for cx, cy, rx, ry in islands:
            inside |= ((xs[None, :] - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
        noise = rng.integers(-3, 4, size=(h, n, 1), dtype=np.int16)
        band = np.clip(glass[None, None, :] + noise, 0, 255).astype(np.uint8)
        for x0 in range(0, n, cell):
            w = min(cell, n - x0)
            m = inside[:, x0:x0 + w]
            if not m.any():
                continue
            t = pieces[k % len(pieces)][:h, :w]
            k += 1
            b = band[:, x0:x0 + w]
            b[m] = t[m]
        out[y0:y0 + h] = band
    out.flush()
    covered = k * cell * cell / (n * n)
    print(f"{a.out}: {n} x {n}, {len(pieces)} distinct crops, tissue cells {covered:.0%} of the slide")


if __name__ == "__main__":
    main()
