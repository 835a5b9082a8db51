#!/usr/bin/env python3
"""Black-box checks of a normalised slide with independent readers (OpenSlide 3.4.1 through
openslide-python, tifffile, libvips' command-line tools). Used by tests/io/test_slide.cpp.

    slide_checks.py OUT --input IN [--format svs|tiff|ome] [--lossless]

Exit status 0 when every check passes; otherwise the failed checks are printed, one a line.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import openslide
import tifffile

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("output")
    ap.add_argument("--input", required=True)
    ap.add_argument("--format", default="svs", choices=["svs", "tiff", "ome"])
    ap.add_argument("--lossless", action="store_true", help="compare pixels between readers exactly")
    ap.add_argument("--tile", type=int, default=256)
    a = ap.parse_args()

    src = openslide.OpenSlide(a.input)
    w0, h0 = src.dimensions
    src_mpp = src.properties.get(openslide.PROPERTY_NAME_MPP_X)
    src_mag = src.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
    multi = w0 > a.tile or h0 > a.tile

    # --- OpenSlide -------------------------------------------------------------------------
    out = openslide.OpenSlide(a.output)
    check(out.dimensions == (w0, h0), f"openslide: level-0 size {out.dimensions} != input {(w0, h0)}")
    if a.format == "svs":
        check(out.properties.get(openslide.PROPERTY_NAME_VENDOR) == "aperio",
              f"openslide: vendor {out.properties.get(openslide.PROPERTY_NAME_VENDOR)} is not aperio")
    if a.format in ("svs", "tiff"):
        if multi:
            check(out.level_count > 1, f"openslide: only {out.level_count} level for a {w0}x{h0} slide")
        # every level halves the previous one, down to a single tile
        dims = out.level_dimensions
        for (wa, ha), (wb, hb) in zip(dims, dims[1:]):
            check(wb == max(1, wa // 2) and hb == max(1, ha // 2), f"openslide: level sizes {dims} do not halve")
        lw, lh = dims[-1]
        check(lw <= a.tile and lh <= a.tile, f"openslide: smallest level {dims[-1]} is larger than a tile")
    if a.format == "svs":
        mpp = out.properties.get(openslide.PROPERTY_NAME_MPP_X)
        mag = out.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        if src_mpp:
            check(mpp is not None and abs(float(mpp) - float(src_mpp)) < 1e-6,
                  f"openslide: mpp {mpp} != input {src_mpp}")
        else:
            check(mpp is None, f"openslide: mpp {mpp} but the input has none")
        if src_mag:
            check(mag is not None and abs(float(mag) - round(float(src_mag))) < 1e-9,
                  f"openslide: objective power {mag} != input {src_mag}")
        check("thumbnail" in out.associated_images, "openslide: no thumbnail")
    if a.format == "tiff" and src_mpp:
        xres = out.properties.get("tiff.XResolution")
        unit = out.properties.get("tiff.ResolutionUnit")
        check(xres is not None and unit == "centimeter" and abs(10000.0 / float(xres) - float(src_mpp)) < 1e-4,
              f"openslide: tiff.XResolution {xres} {unit} does not give mpp {src_mpp}")
    # pixels of every level read back without error
    for lvl in range(out.level_count):
        lw, lh = out.level_dimensions[lvl]
        ds = out.level_downsamples[lvl]
        r = out.read_region((int((lw - 1) * ds), int((lh - 1) * ds)), lvl, (1, 1))
        check(r.size == (1, 1), f"openslide: level {lvl} unreadable")

    # --- tifffile --------------------------------------------------------------------------
    with tifffile.TiffFile(a.output) as tf:
        s0 = tf.series[0]
        check(s0.shape[:2] == (h0, w0), f"tifffile: series 0 shape {s0.shape} != {(h0, w0)}")
        if a.format == "svs":
            check(tf.is_svs, "tifffile: not recognised as SVS")
            check(len(tf.series) >= 2 and tf.series[1].name == "Thumbnail", "tifffile: no thumbnail series")
        if a.format == "ome":
            check(tf.is_ome, "tifffile: not recognised as OME-TIFF")
        if multi:
            check(len(s0.levels) > 1, f"tifffile: {len(s0.levels)} level(s) for a {w0}x{h0} slide")
        if a.lossless:
            # every level both readers see must agree pixel for pixel
            for lvl in range(1, min(len(s0.levels), out.level_count)):
                lw, lh = out.level_dimensions[lvl]
                o = np.asarray(out.read_region((0, 0), lvl, (lw, lh)))
                t = s0.levels[lvl].asarray()
                check(np.array_equal(o[:, :, :3], t) and (o[:, :, 3] == 255).all(),
                      f"tifffile and openslide disagree on level {lvl} ({lw}x{lh})")
            level0 = s0.levels[0].asarray()
            region = np.asarray(out.read_region((0, 0), 0, (w0, h0)))
            check(np.array_equal(level0, region[:, :, :3]), "tifffile and openslide disagree on level 0")
            if len(s0.levels) > 1:
                l1 = s0.levels[1].asarray().astype(np.int32)
                h1, w1 = l1.shape[:2]
                ref = level0[: 2 * h1, : 2 * w1].astype(np.int32)
                ref = (ref[0::2, 0::2] + ref[1::2, 0::2] + ref[0::2, 1::2] + ref[1::2, 1::2] + 2) // 4
                check(np.array_equal(l1, ref), "tifffile: level 1 is not the 2x2 mean of level 0")

    # --- libvips ---------------------------------------------------------------------------
    r = subprocess.run(["vipsheader", a.output], capture_output=True, text=True)
    check(r.returncode == 0 and f"{w0}x{h0}" in r.stdout, f"vipsheader: rc {r.returncode} {r.stdout} {r.stderr}")
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["vips", "copy", a.output, os.path.join(d, "x.v")], capture_output=True, text=True)
        check(r.returncode == 0, f"vips copy: rc {r.returncode} {r.stderr.strip()}")

    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("ok:", a.output)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a reader that cannot open the file is a failed check too
        print(f"FAIL: {type(e).__name__}: {e}")
        sys.exit(1)
