#!/usr/bin/env python3
"""What an output slide carries over from its input: the pixel size and objective power, checked
with readers other than vahanorm (tifffile's tags, OpenSlide 3.4 through openslide-python) for
each kind of input and each output layout. The expected values are written here, from how each
input was made, never read back through vahanorm.

    slide_metadata.py --vahanorm PATH --synth PATH --case NAME

Cases (inputs): svs (Aperio, MPP 0.25, AppMag 40), tiff-cm (libvips, 0.5 um/px as px/cm),
tiff-inch (libvips, 0.25 um/px as px/inch), tiff-none (tifffile, resolution unit none),
tiff-vips-default (libvips without --xres: 10 px/cm, a writer's default, so unknown),
roundtrip (vahanorm's own tiff output fed back in).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import openslide
import tifffile

ARGS = None
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def sh(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def base_image(tmp):
    """A 1800 x 1300 synthetic H&E slide (several pyramid levels), as a 3-band libvips image."""
    sh([ARGS.synth, "syn.svs", "--width", "1800", "--height", "1300", "--quality", "90", "--threads", "2"], tmp)
    # openslideload gives RGBA, and the SVS's MPP as its resolution: keep RGB, and reset the
    # resolution to libvips' default (1 px/mm), which a tiffsave without --xres writes.
    sh(["vips", "extract_band", "syn.svs", "rgb.v", "0", "--n", "3"], tmp)
    sh(["vips", "copy", "rgb.v", "base.v", "--xres", "1", "--yres", "1"], tmp)
    return "base.v"


def make_input(kind, tmp):
    """Returns (path, expected mpp or None, expected objective power or None)."""
    if kind == "svs":
        sh([ARGS.synth, "in.svs", "--width", "1800", "--height", "1300", "--mpp", "0.25", "--mag", "40",
            "--threads", "2"], tmp)
        return "in.svs", 0.25, 40.0
    b = base_image(tmp)
    tile = ["--tile", "--pyramid", "--compression", "jpeg", "--Q", "90", "--tile-width", "256", "--tile-height", "256"]
    if kind == "tiff-cm":
        # libvips' --xres is in px/mm whatever the unit written: 2000 px/mm = 0.5 um/px.
        sh(["vips", "tiffsave", b, "in.tif"] + tile + ["--xres", "2000", "--yres", "2000", "--resunit", "cm"], tmp)
        check(tifffile.TiffFile(os.path.join(tmp, "in.tif")).pages[0].tags["ResolutionUnit"].value == 3,
              "test input: tiff-cm was not written in centimeters")
        return "in.tif", 0.5, None
    if kind == "tiff-inch":
        # 4000 px/mm = 101600 px/inch = 0.25 um/px.
        sh(["vips", "tiffsave", b, "in.tif"] + tile + ["--xres", "4000", "--yres", "4000", "--resunit", "inch"], tmp)
        check(tifffile.TiffFile(os.path.join(tmp, "in.tif")).pages[0].tags["ResolutionUnit"].value == 2,
              "test input: tiff-inch was not written in inches")
        return "in.tif", 0.25, None
    if kind == "tiff-vips-default":
        sh(["vips", "tiffsave", b, "in.tif"] + tile, tmp)
        return "in.tif", None, None
    if kind == "tiff-none":
        sh(["vips", "tiffsave", b, "flat.tif", "--compression", "none"], tmp)
        px = tifffile.imread(os.path.join(tmp, "flat.tif"))
        tifffile.imwrite(os.path.join(tmp, "in.tif"), px, tile=(256, 256), photometric="rgb", compression="zlib",
                         resolution=(1, 1), resolutionunit="NONE")
        tags = tifffile.TiffFile(os.path.join(tmp, "in.tif")).pages[0].tags
        check(tags["ResolutionUnit"].value == 1, "test input: tiff-none has a resolution unit")
        return "in.tif", None, None
    if kind == "roundtrip":
        path, _, _ = make_input("tiff-cm", tmp)
        sh([ARGS.vahanorm, "apply", path, "-o", "first.tif", "--format", "tiff", "--threads", "2", "-q"], tmp)
        return "first.tif", 0.5, None
    raise SystemExit(f"unknown case {kind}")


def levels_of(tf, layout):
    """The pyramid levels as tifffile pages, level 0 first."""
    if layout == "ome":
        return list(tf.series[0].levels)
    if layout == "svs":
        # level 0, thumbnail (stripped), reduced levels (tiled); label/macro not here.
        return [p for p in tf.pages if p.is_tiled]
    return list(tf.pages)


def page_of(level):
    return level.keyframe if hasattr(level, "keyframe") else level


def check_output(out, layout, mpp, mag, report, tmp):
    what = f"{layout} output {out}"
    path = os.path.join(tmp, out)
    rec = report["inputs"][0]
    check(rec.get("status") == "ok", f"{what}: report status {rec.get('status')}")
    slide = rec.get("slide", {})
    # --- the report: numbers when known, null when not (never 0) ----------------------------
    if mpp is None:
        check(slide.get("mpp", "absent") is None, f"{what}: report mpp {slide.get('mpp')} for an unknown pixel size")
    else:
        m = slide.get("mpp")
        check(isinstance(m, list) and len(m) == 2 and all(abs(v - mpp) < 1e-6 for v in m),
              f"{what}: report mpp {m}, expected [{mpp}, {mpp}]")
    if mag is None:
        check(slide.get("objective_power", "absent") is None, f"{what}: report objective_power {slide.get('objective_power')}")
    else:
        check(slide.get("objective_power") == mag, f"{what}: report objective_power {slide.get('objective_power')}")

    # --- tifffile: resolution tags on every level, in cm, scaled by the level's downsample --
    with tifffile.TiffFile(path) as tf:
        levels = levels_of(tf, layout)
        check(len(levels) >= 3, f"{what}: {len(levels)} levels")
        w0, h0 = page_of(levels[0]).imagewidth, page_of(levels[0]).imagelength
        for i, lv in enumerate(levels):
            pg = page_of(lv)
            tags = pg.tags
            unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else None
            if mpp is None:
                check(unit in (None, 1), f"{what}: level {i} has resolution unit {unit} for an unknown pixel size")
                continue
            check(unit == 3, f"{what}: level {i} resolution unit {unit}, expected 3 (centimeter)")
            if "XResolution" not in tags or "YResolution" not in tags:
                check(False, f"{what}: level {i} lacks XResolution/YResolution")
                continue
            xn, xd = tags["XResolution"].value
            yn, yd = tags["YResolution"].value
            # A reduced level's pixel covers (level-0 size / level size) input pixels on each axis.
            for name, (n, d), ds in (("X", (xn, xd), w0 / pg.imagewidth), ("Y", (yn, yd), h0 / pg.imagelength)):
                got = 1e4 * d / n
                check(abs(got - mpp * ds) < 1e-3 * mpp * ds,
                      f"{what}: level {i} {name}Resolution gives {got} um/px, expected {mpp} x {ds}")
        desc = tf.pages[0].description
        if layout == "svs":
            has_mpp = re.search(r"\|MPP = ([0-9.]+)", desc)
            has_mag = re.search(r"\|AppMag = ([0-9.]+)", desc)
            if mpp is None:
                check(has_mpp is None, f"{what}: description gives MPP for an unknown pixel size")
            else:
                check(has_mpp is not None and abs(float(has_mpp.group(1)) - mpp) < 1e-6,
                      f"{what}: description MPP {has_mpp and has_mpp.group(1)}, expected {mpp}")
            if mag is None:
                check(has_mag is None, f"{what}: description gives AppMag for an unknown objective")
            else:
                check(has_mag is not None and float(has_mag.group(1)) == mag, f"{what}: description AppMag, expected {mag}")
        if layout == "ome":
            root = ET.fromstring(desc.encode("utf-8") if isinstance(desc, str) else desc)
            ns = {"o": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}
            px = root.find("o:Image/o:Pixels", ns)
            check(px is not None, f"{what}: no OME Pixels element")
            if px is not None:
                if mpp is None:
                    check("PhysicalSizeX" not in px.attrib, f"{what}: PhysicalSizeX for an unknown pixel size")
                else:
                    for a in ("X", "Y"):
                        v = px.attrib.get("PhysicalSize" + a)
                        check(v is not None and abs(float(v) - mpp) < 1e-6, f"{what}: PhysicalSize{a} {v}, expected {mpp}")
                        check(px.attrib.get(f"PhysicalSize{a}Unit") == "\u00b5m",
                              f"{what}: PhysicalSize{a}Unit {px.attrib.get(f'PhysicalSize{a}Unit')!r}")
            obj = root.find("o:Instrument/o:Objective", ns)
            if mag is None:
                check(obj is None, f"{what}: an objective for an unknown magnification")
            else:
                check(obj is not None and float(obj.attrib.get("NominalMagnification", "0")) == mag,
                      f"{what}: NominalMagnification, expected {mag}")

    # --- OpenSlide 3.4 ----------------------------------------------------------------------
    s = openslide.OpenSlide(path)
    p = s.properties
    if layout == "svs":
        got = p.get(openslide.PROPERTY_NAME_MPP_X)
        if mpp is None:
            check(got is None, f"{what}: openslide.mpp-x {got} for an unknown pixel size")
        else:
            check(got is not None and abs(float(got) - mpp) < 1e-6, f"{what}: openslide.mpp-x {got}, expected {mpp}")
        got = p.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        if mag is None:
            check(got is None, f"{what}: openslide.objective-power {got}")
        else:
            check(got is not None and float(got) == mag, f"{what}: openslide.objective-power {got}, expected {mag}")
    else:
        xres, unit = p.get("tiff.XResolution"), p.get("tiff.ResolutionUnit")
        if mpp is None:
            # (libtiff reports its default unit, inch, when the tag is absent)
            check(xres is None or unit == "none", f"{what}: openslide tiff.XResolution {xres} {unit} for an unknown pixel size")
        else:
            check(unit == "centimeter" and xres is not None and abs(1e4 / float(xres) - mpp) < 1e-4,
                  f"{what}: openslide tiff.XResolution {xres} {unit}, expected {mpp} um/px")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vahanorm", required=True)
    ap.add_argument("--synth", required=True)
    ap.add_argument("--case", required=True)
    ARGS = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vahanorm-meta-") as tmp:
        src, mpp, mag = make_input(ARGS.case, tmp)
        for layout, out in (("svs", "out.svs"), ("tiff", "out.tif"), ("ome", "out.ome.tif")):
            p = subprocess.run([ARGS.vahanorm, "apply", src, "-o", out, "--format", layout, "--threads", "2",
                                "--report", "r.json"], cwd=tmp, capture_output=True, text=True)
            if not check(p.returncode == 0, f"{layout}: vahanorm exit {p.returncode}\n{p.stderr}"):
                continue
            log = p.stderr + p.stdout
            if mpp is None:
                check("pixel size unknown" in log, f"{layout}: the log does not say the pixel size is unknown")
            else:
                check(log.count("pixel size ") == 1, f"{layout}: the log does not give the pixel size once:\n{log}")
            with open(os.path.join(tmp, "r.json")) as f:
                report = json.load(f)
            check_output(out, layout, mpp, mag, report, tmp)
    for f in failures:
        print("FAIL:", f)
    print(f"{ARGS.case}: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
