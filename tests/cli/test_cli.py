#!/usr/bin/env python3
"""The vahanorm command line as a black box: exit codes, messages, files left behind.

Each test is a function named case_*; CTest runs them one at a time:
    test_cli.py --vahanorm PATH --shared DIR --case NAME
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# The documented exit codes (docs/cli.md).
OK, PARTIAL, USAGE, DATA, INPUT, DEVICE, INTERNAL, OUTPUT, INTERRUPTED = 0, 3, 64, 65, 66, 69, 70, 73, 75

ARGS = None


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def run(args, cwd, env=None, timeout=300):
    e = dict(os.environ)
    e.pop("VAHANORM_TARGET", None)
    if env:
        e.update(env)
    p = subprocess.run([ARGS.vahanorm] + args, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def expect(args, code, cwd, env=None, needle=None):
    rc, out, err = run(args, cwd, env)
    check(rc == code, f"vahanorm {' '.join(args)}: exit {rc}, expected {code}\nstdout: {out}\nstderr: {err}")
    if needle is not None:
        check(needle in out + err, f"vahanorm {' '.join(args)}: output lacks {needle!r}\nstdout: {out}\nstderr: {err}")
    return out, err


def files_in(d):
    return sorted(os.listdir(d))


def no_temp_files(d):
    leftovers = [f for f in os.listdir(d) if "vahanorm-tmp" in f]
    check(not leftovers, f"temporary files left in {d}: {leftovers}")


def make_samples(tmp):
    """A synthetic H&E pair from the built-in demo (no third-party data)."""
    expect(["demo", "-o", "samples", "--size", "256"], OK, tmp)
    return os.path.join(tmp, "samples", "reference.png"), os.path.join(tmp, "samples", "source.png")


def shared(rel):
    p = os.path.join(ARGS.shared, rel)
    check(os.path.exists(p), f"shared test data missing: {p}")
    return p


# ---- cases ----------------------------------------------------------------------------------

def case_help_and_version(tmp):
    out, _ = expect(["--help"], OK, tmp)
    for sub in ("fit", "estimate", "apply", "demo"):
        check(sub in out, f"--help does not list {sub}")
        o, _ = expect([sub, "--help"], OK, tmp)
        check("--" in o, f"{sub} --help shows no options")
    out, _ = expect(["--version"], OK, tmp)
    check(out.startswith("vahanorm "), f"--version printed {out!r}")


def case_usage_errors(tmp):
    expect([], USAGE, tmp)
    expect(["frobnicate"], USAGE, tmp)
    expect(["apply"], USAGE, tmp)
    expect(["fit"], USAGE, tmp, needle="--ref")
    expect(["apply", "x.png", "-o", "y.png", "--quality", "500"], USAGE, tmp)
    ref, src = make_samples(tmp)
    expect(["apply", src, "-o", "y.bmp"], USAGE, tmp, needle="output format")
    expect(["--device", "tpu", "apply", src, "-o", "y.png"], USAGE, tmp, needle="--device")
    # A malformed device list is a typo, not a missing GPU (which would be retried on another node).
    for bad in ("cuda:", "cuda:0,", "cuda:x", "cuda:1234567"):
        expect(["--device", bad, "apply", src, "-o", "y.png"], USAGE, tmp, needle="--device")
    check(not os.path.exists(os.path.join(tmp, "y.png")), "an output was written after a usage error")


def case_subcommands_and_help(tmp):
    out, err = expect(["frobnicate", "x.png"], USAGE, tmp, needle="unknown subcommand 'frobnicate'")
    # A subcommand's help lists the global options it accepts.
    for sub in ("apply", "fit", "estimate", "demo"):
        out, err = expect([sub, "--help"], OK, tmp)
        for opt in ("--threads", "--report", "-q,--quiet", "--device"):
            check(opt in out, f"vahanorm {sub} --help does not list {opt}:\n{out}")


def case_slide_layouts_and_names(tmp):
    slide = shared("slides/CMU-1-Small-Region.svs")
    # -o NAME.ome.tif picks the OME layout; --format overrides it.
    expect(["apply", slide, "-o", "a.ome.tif", "--threads", "2", "--compression", "deflate"], OK, tmp)
    with open(os.path.join(tmp, "a.ome.tif"), "rb") as f:
        head = f.read()
    check(b"<OME " in head, "a.ome.tif is not an OME-TIFF")
    expect(["apply", slide, "-o", "b.ome.tiff", "--format", "svs", "--threads", "2"], OK, tmp)
    with open(os.path.join(tmp, "b.ome.tiff"), "rb") as f:
        head = f.read()
    check(b"Aperio Image Library" in head and b"<OME " not in head, "--format svs did not win over the .ome.tiff name")
    # Directory mode with --format ome names outputs NAME.ome.tif.
    expect(["apply", slide, "-o", "outdir/", "--format", "ome", "--threads", "2", "--qc", "qc/", "--report", "r.json"],
           OK, tmp)
    check(files_in(os.path.join(tmp, "outdir")) == ["CMU-1-Small-Region.ome.tif"],
          f"directory mode wrote {files_in(os.path.join(tmp, 'outdir'))}")
    rep = json.load(open(os.path.join(tmp, "r.json")))["inputs"][0]
    check(all("//" not in f for f in rep["qc_files"]), f"--qc qc/ reported {rep['qc_files']}")
    check(rep["source_model"]["source"]["sha256_of"] == "file bytes" and len(rep["source_model"]["source"]["sha256"]) == 64,
          f"no provenance hash in the report: {rep['source_model']}")
    # --keep-associated: tiff refuses before any work, ome keeps them.
    expect(["apply", slide, "-o", "c.tif", "--format", "tiff", "--keep-associated"], USAGE, tmp,
           needle="--keep-associated")
    check(not os.path.exists(os.path.join(tmp, "c.tif")), "an output was written after a usage error")
    expect(["apply", slide, "-o", "d.ome.tif", "--keep-associated", "--threads", "2"], OK, tmp,
           needle="keeping 2 associated")
    # --no-normalize: the codec floor, slides only.
    expect(["apply", slide, "-o", "e.tif", "--no-normalize", "--threads", "2"], OK, tmp, needle="without a stain model")
    ref, src = make_samples(tmp)
    expect(["apply", src, "-o", "f.png", "--no-normalize"], USAGE, tmp, needle="whole slides only")


def case_tile_outputs_keep_dpi(tmp):
    from PIL import Image
    ref, src = make_samples(tmp)
    target = os.path.join(tmp, "samples", "target.json")
    Image.open(os.path.join(tmp, src)).convert("RGB").save(os.path.join(tmp, "dpi.png"), dpi=(254, 254))
    Image.open(os.path.join(tmp, src)).convert("RGB").save(os.path.join(tmp, "dpi.jpg"), dpi=(300, 300), quality=95)
    expect(["apply", "dpi.png", "dpi.jpg", "-o", "out/", "--target", target], OK, tmp)
    for name, want in (("dpi.png", 254), ("dpi.jpg", 300)):
        got = Image.open(os.path.join(tmp, "out", name)).info.get("dpi")
        check(got is not None and abs(got[0] - want) < 0.5 and abs(got[1] - want) < 0.5,
              f"out/{name}: dpi {got}, input had {want}")
    expect(["apply", "dpi.png", "-o", "out/as.jpg", "--target", target], OK, tmp)
    got = Image.open(os.path.join(tmp, "out", "as.jpg")).info.get("dpi")
    check(got is not None and abs(got[0] - 254) < 0.5, f"PNG -> JPEG lost the dpi: {got}")


def case_progress_on_a_terminal(tmp):
    """On a terminal the live progress line never shares a row with a log line, and the final
    'IN -> OUT' line is printed once."""
    import pty
    import select
    slide = shared("slides/CMU-1-Small-Region.svs")
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("VAHANORM_TARGET", None)
    p = subprocess.Popen([ARGS.vahanorm, "apply", slide, "-o", "p.tif", "--threads", "2"], cwd=tmp, env=e,
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    raw = b""
    while True:
        r, _, _ = select.select([master], [], [], 120)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        raw += chunk
    p.wait(timeout=120)
    os.close(master)
    check(p.returncode == OK, f"exit {p.returncode}: {raw!r}")
    text = raw.decode("utf-8", "replace")
    check("tiles (" in text, f"no progress line was drawn on the terminal: {text!r}")
    for row in text.replace("\r\n", "\n").split("\n"):
        shown = row.split("\r")[-1].replace("\x1b[K", "")  # what stays visible of the row
        check(not ("tiles (" in shown and "info:" in shown), f"progress and a log line share a row: {shown!r}")
    check(text.count(" -> ") == 1, f"the final '->' line is printed {text.count(' -> ')} times: {text!r}")


def case_unsupported_slide_formats(tmp):
    with open(os.path.join(tmp, "scan.czi"), "wb") as f:
        f.write(b"ZISRAWFILE" + bytes(100))
    out, err = expect(["apply", "scan.czi", "-o", "o.tif"], INPUT, tmp, needle="Zeiss CZI is not a slide format")
    check("OpenSlide" in err and ".ndpi" in err, f"the message does not say what this build reads: {err}")
    os.makedirs(os.path.join(tmp, "wsi"))
    with open(os.path.join(tmp, "wsi", "level0.dcm"), "wb") as f:
        f.write(bytes(128) + b"DICM")
    out, err = expect(["apply", "wsi", "-o", "o2.tif"], INPUT, tmp, needle="DICOM")
    check("OpenSlide" in err, f"the DICOM message does not say what this build reads: {err}")


def case_fit_default_output(tmp):
    ref, src = make_samples(tmp)
    out, err = expect(["fit", "--ref", ref], OK, tmp, needle="target.json")
    model = json.load(open(os.path.join(tmp, "target.json")))
    check(model["format"] == "vahanorm-model", "fit wrote no model")
    check(len(model["stain_matrix"]) == 2 and len(model["stain_matrix"][0]) == 3, "bad stain_matrix")
    check(model["source"]["sha256"] and len(model["source"]["sha256"]) == 64, "no sha256 of the reference")


def case_fit_pools_several_references(tmp):
    ref, src = make_samples(tmp)
    expect(["fit", "--ref", ref, "--ref", src, "-o", "pooled.json"], OK, tmp)
    m = json.load(open(os.path.join(tmp, "pooled.json")))
    single = json.load(open(os.path.join(tmp, "samples", "target.json")))
    check(m["source"]["tissue_pixels"] > single["source"]["tissue_pixels"], "pooling did not add tissue pixels")


def case_apply_target_resolution(tmp):
    ref, src = make_samples(tmp)
    # No target anywhere: the built-in reference, said in the log.
    _, err = expect(["apply", src, "-o", "a.png"], OK, tmp, needle="built-in")
    # ./target.json
    expect(["fit", "--ref", ref], OK, tmp)
    expect(["apply", src, "-o", "b.png"], OK, tmp, needle="./target.json")
    # $VAHANORM_TARGET wins over ./target.json
    shutil.copy(os.path.join(tmp, "samples", "source.json"), os.path.join(tmp, "env.json"))
    expect(["apply", src, "-o", "c.png"], OK, tmp, env={"VAHANORM_TARGET": os.path.join(tmp, "env.json")},
           needle="VAHANORM_TARGET")
    # --target wins over both
    expect(["apply", src, "-o", "d.png", "--target", "target.json"], OK, tmp,
           env={"VAHANORM_TARGET": os.path.join(tmp, "env.json")}, needle="--target")
    check(open(os.path.join(tmp, "b.png"), "rb").read() == open(os.path.join(tmp, "d.png"), "rb").read(),
          "the same target gave different outputs")
    check(open(os.path.join(tmp, "b.png"), "rb").read() != open(os.path.join(tmp, "c.png"), "rb").read(),
          "$VAHANORM_TARGET was ignored")
    # A missing $VAHANORM_TARGET is an error, not a silent fallback.
    expect(["apply", src, "-o", "e.png"], INPUT, tmp, env={"VAHANORM_TARGET": "/nonexistent.json"})
    check(not os.path.exists(os.path.join(tmp, "e.png")), "output written despite a missing target")


def case_apply_formats(tmp):
    ref, src = make_samples(tmp)
    expect(["fit", "--ref", ref], OK, tmp)
    for name in ("o.png", "o.jpg", "o.jpeg", "o.tif", "o.tiff"):
        expect(["apply", src, "-o", name, "--quality", "80"], OK, tmp)
        check(os.path.getsize(os.path.join(tmp, name)) > 1000, f"{name} is empty")
    # Read back: our own reader accepts each output as an input.
    for name in ("o.png", "o.jpg", "o.tif"):
        expect(["apply", name, "-o", "again_" + name], OK, tmp)
    no_temp_files(tmp)


def case_batch_with_corrupt_input(tmp):
    ref, src = make_samples(tmp)
    expect(["fit", "--ref", ref], OK, tmp)
    inputs = []
    for i in range(4):
        p = os.path.join(tmp, f"tile{i}.png")
        shutil.copy(src, p)
        inputs.append(p)
    data = open(src, "rb").read()
    open(os.path.join(tmp, "broken.png"), "wb").write(data[: len(data) // 3])
    inputs.insert(2, os.path.join(tmp, "broken.png"))
    out, err = expect(["apply"] + inputs + ["-o", "out/", "--report", "run.json"], PARTIAL, tmp)
    check("broken.png" in err, "the corrupt input is not named in the log")
    check(files_in(os.path.join(tmp, "out")) == [f"tile{i}.png" for i in range(4)],
          f"unexpected outputs: {files_in(os.path.join(tmp, 'out'))}")
    report = json.load(open(os.path.join(tmp, "run.json")))
    statuses = {os.path.basename(r["input"]): r["status"] for r in report["inputs"]}
    check(statuses["broken.png"] == "failed", f"report: {statuses}")
    check(sum(s == "ok" for s in statuses.values()) == 4, f"report: {statuses}")
    check(report["exit_code"] == PARTIAL, "report exit code")
    check(all("qc" in r for r in report["inputs"] if r["status"] == "ok"), "QC flags missing from the report")


def case_blank_tile(tmp):
    blank = shared("tiles/edge_histolab_almost-white-2.png")
    out, err = expect(["apply", blank, "-o", "blank.png"], OK, tmp, needle="passed through")
    check(os.path.exists(os.path.join(tmp, "blank.png")), "blank tile not written")
    _, err = expect(["fit", "--ref", blank, "-o", "t.json"], DATA, tmp, needle="tissue")
    errors = [l for l in err.splitlines() if l.startswith("error:")]
    check(len(errors) == 1, f"fit on a blank tile should give one clear error line: {err}")
    check(not os.path.exists(os.path.join(tmp, "t.json")), "fit on a blank tile left a model")


def case_missing_and_unreadable_inputs(tmp):
    expect(["apply", "nope.png", "-o", "x.png"], INPUT, tmp, needle="nope.png")
    check(not os.path.exists(os.path.join(tmp, "x.png")), "output left for a missing input")
    open(os.path.join(tmp, "text.png"), "w").write("hello, not an image\n")
    expect(["apply", "text.png", "-o", "x.png"], INPUT, tmp, needle="text.png")
    os.mkdir(os.path.join(tmp, "adir"))
    expect(["apply", "adir", "-o", "x.png"], INPUT, tmp, needle="directory")
    expect(["fit", "--ref", "nope.png"], INPUT, tmp)
    check(not os.path.exists(os.path.join(tmp, "x.png")), "output left after failures")
    check(not os.path.exists(os.path.join(tmp, "target.json")), "model left after a failed fit")


def case_output_errors(tmp):
    ref, src = make_samples(tmp)
    expect(["apply", src, "-o", src], OUTPUT, tmp, needle="overwrite")
    open(os.path.join(tmp, "afile"), "w").write("x")
    expect(["apply", src, "-o", "afile/out.png"], OUTPUT, tmp)
    expect(["apply", src, src, "-o", "afile/outdir/"], OUTPUT, tmp)
    expect(["fit", "--ref", ref, "-o", "afile/t.json"], OUTPUT, tmp)
    # Two inputs onto one output name: refused before any work.
    os.mkdir(os.path.join(tmp, "d1"))
    os.mkdir(os.path.join(tmp, "d2"))
    shutil.copy(src, os.path.join(tmp, "d1", "same.png"))
    shutil.copy(src, os.path.join(tmp, "d2", "same.png"))
    expect(["apply", "d1/same.png", "d2/same.png", "-o", "o2/"], USAGE, tmp, needle="both write")


def case_bad_model_files(tmp):
    ref, src = make_samples(tmp)
    cases = {
        "notjson.json": "this is not json",
        "nan.json": '{"format":"vahanorm-model","version":1,"stain_matrix":[[0.56,0.72,0.41],[0.22,0.80,0.56]],'
                    '"max_concentrations":[NaN,1]}',
        "neg.json": '{"format":"vahanorm-model","version":1,"stain_matrix":[[0.56,0.72,0.41],[0.22,0.80,0.56]],'
                    '"max_concentrations":[-1,1]}',
        "shape.json": '{"format":"vahanorm-model","version":1,"stain_matrix":[[0.56,0.72],[0.22,0.80]],'
                      '"max_concentrations":[1,1]}',
        "parallel.json": '{"format":"vahanorm-model","version":1,"stain_matrix":[[0.6,0.8,0.0],[0.6,0.8,0.0]],'
                         '"max_concentrations":[1,1]}',
    }
    for name, text in cases.items():
        open(os.path.join(tmp, name), "w").write(text)
        _, err = expect(["apply", src, "-o", "x.png", "--target", name], DATA, tmp, needle=name)
        expect(["apply", src, "-o", "x.png", "--source-model", name], DATA, tmp)
    check(not os.path.exists(os.path.join(tmp, "x.png")), "output written with a bad model")


def case_device_selection(tmp):
    ref, src = make_samples(tmp)
    # No GPU on CI machines: --device cuda must fail clearly, auto must fall back and say so.
    rc, out, err = run(["--device", "cuda", "apply", src, "-o", "g.png"], tmp)
    if rc == OK:
        print("[note] a CUDA device answered; --device cuda worked")
    else:
        check(rc == DEVICE, f"--device cuda without a device: exit {rc}\n{err}")
        check(not os.path.exists(os.path.join(tmp, "g.png")), "output written without a device")
    _, err = expect(["--device", "auto", "apply", src, "-o", "a.png"], OK, tmp, needle="device:")
    expect(["--device", "cpu", "apply", src, "-o", "c.png"], OK, tmp, needle="cpu")


def case_estimate_and_source_model(tmp):
    ref, src = make_samples(tmp)
    expect(["fit", "--ref", ref], OK, tmp)
    expect(["estimate", src, "-o", "src.json"], OK, tmp)
    expect(["apply", src, "-o", "per_tile.png"], OK, tmp)
    expect(["apply", src, "-o", "fixed.png", "--source-model", "src.json"], OK, tmp)
    check(open(os.path.join(tmp, "per_tile.png"), "rb").read() == open(os.path.join(tmp, "fixed.png"), "rb").read(),
          "a saved source model did not reproduce the per-image estimate")
    expect(["apply", src, ref, "-o", "pooled/", "--pooled", "--report", "r.json"], OK, tmp, needle="pooled")


def case_masks_and_ink(tmp):
    """--mask (GeoJSON, exit codes 64/65/66), --exclude-ink counts in the model's source."""
    ref, src = make_samples(tmp)
    def write(name, text):
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    write("left.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [160, 0], [160, 256], [0, 256], [0, 0]]]},
         "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}}]}))
    expect(["estimate", src, "-o", "masked.json", "--mask", "left.geojson", "--mask-class", "Tumor"], OK, tmp)
    m = json.load(open(os.path.join(tmp, "masked.json")))
    check(m["source"]["mask"]["path"] == "left.geojson", f"mask path not in the model: {m['source']}")
    check(len(m["source"]["mask"]["sha256"]) == 64, "mask hash not in the model")
    check(m["source"]["mask"]["masked_out_pixels"] > 0, "no pixel masked out")
    check("ink_artefact_pixels" in m["source"], "ink count not in the model")
    check(m["params"]["exclude_ink"] is True, "ink filter not on by default")
    expect(["--no-exclude-ink", "estimate", src, "-o", "noink.json"], OK, tmp)
    check(json.load(open(os.path.join(tmp, "noink.json")))["params"]["exclude_ink"] is False, "--no-exclude-ink ignored")
    write("empty.geojson", json.dumps({"type": "FeatureCollection", "features": []}))
    expect(["estimate", src, "-o", "x.json", "--mask", "empty.geojson"], DATA, tmp, needle="empty mask")
    write("outside.geojson", json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[900, 900], [990, 900], [990, 990]]]}}))
    expect(["estimate", src, "-o", "x.json", "--mask", "outside.geojson"], DATA, tmp, needle="outside the image")
    write("broken.geojson", "{\"type\": \"FeatureCollection\", \"features\": [")
    expect(["estimate", src, "-o", "x.json", "--mask", "broken.geojson"], DATA, tmp, needle="not a valid JSON")
    expect(["estimate", src, "-o", "x.json", "--mask", "left.geojson", "--mask-class", "Necrosis"], DATA, tmp,
           needle="Tumor")
    expect(["estimate", src, "-o", "x.json", "--mask", "missing.geojson"], INPUT, tmp)
    expect(["fit", "--ref", ref, "--ref", src, "-o", "x.json", "--mask", "left.geojson"], USAGE, tmp, needle="--mask")
    expect(["apply", src, "-o", "x.png", "--mask", "left.geojson"], USAGE, tmp, needle="--source-model")
    check(not os.path.exists(os.path.join(tmp, "x.json")) and not os.path.exists(os.path.join(tmp, "x.png")),
          "a failed masked estimate left an output")


def case_determinism_across_threads(tmp):
    ref, src = make_samples(tmp)
    expect(["fit", "--ref", ref], OK, tmp)
    expect(["--threads", "1", "apply", src, "-o", "t1.png"], OK, tmp)
    expect(["--threads", "2", "apply", src, "-o", "t2.png"], OK, tmp)
    expect(["--threads", "2", "apply", src, "-o", "t3.png"], OK, tmp)
    b = [open(os.path.join(tmp, f"t{i}.png"), "rb").read() for i in (1, 2, 3)]
    check(b[0] == b[1] == b[2], "outputs differ between runs or thread counts")
    expect(["--threads", "1", "fit", "--ref", ref, "-o", "f1.json"], OK, tmp)
    expect(["--threads", "2", "fit", "--ref", ref, "-o", "f2.json"], OK, tmp)
    m1, m2 = (json.load(open(os.path.join(tmp, f))) for f in ("f1.json", "f2.json"))
    check(m1["stain_matrix"] == m2["stain_matrix"] and m1["max_concentrations"] == m2["max_concentrations"],
          "fit differs between thread counts")


def case_skip_existing(tmp):
    ref, src = make_samples(tmp)
    inputs = []
    for i in range(3):
        p = os.path.join(tmp, f"t{i}.png")
        shutil.copy(src, p)
        inputs.append(p)
    expect(["apply"] + inputs + ["-o", "out/"], OK, tmp)
    # A truncated output is not complete: it is redone; complete ones are skipped.
    victim = os.path.join(tmp, "out", "t1.png")
    data = open(victim, "rb").read()
    open(victim, "wb").write(data[: len(data) // 2])
    out, err = expect(["apply"] + inputs + ["-o", "out/", "--skip-existing", "--report", "r.json"], OK, tmp)
    report = json.load(open(os.path.join(tmp, "r.json")))
    statuses = {os.path.basename(r["input"]): r["status"] for r in report["inputs"]}
    check(statuses == {"t0.png": "skipped", "t1.png": "ok", "t2.png": "skipped"}, f"statuses {statuses}")
    check(open(victim, "rb").read() == data, "the redone output differs from the first one")


def case_sigterm_leaves_nothing_half_written(tmp):
    ref, src = make_samples(tmp)
    inputs = []
    for i in range(400):
        p = os.path.join(tmp, f"t{i:03d}.png")
        os.link(src, p)
        inputs.append(p)
    e = dict(os.environ)
    p = subprocess.Popen([ARGS.vahanorm, "apply"] + inputs + ["-o", "out/"], cwd=tmp, env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until some outputs exist, then ask it to stop as SLURM's preemption would.
    deadline = time.time() + 60
    while time.time() < deadline and (not os.path.isdir(os.path.join(tmp, "out")) or
                                      len(os.listdir(os.path.join(tmp, "out"))) < 3):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    t0 = time.time()
    out, err = p.communicate(timeout=30)
    check(time.time() - t0 < 10, "did not stop within seconds of SIGTERM")
    check(p.returncode == INTERRUPTED, f"exit {p.returncode} after SIGTERM\n{err}")
    written = os.listdir(os.path.join(tmp, "out"))
    check(0 < len(written) < 400, f"{len(written)} outputs after SIGTERM")
    no_temp_files(os.path.join(tmp, "out"))
    # Every output present is complete: a rerun with --skip-existing skips exactly those.
    expect(["apply"] + inputs + ["-o", "out/", "--skip-existing", "--report", "r.json"], OK, tmp)
    report = json.load(open(os.path.join(tmp, "r.json")))
    skipped = sum(r["status"] == "skipped" for r in report["inputs"])
    check(skipped == len(written), f"{skipped} skipped, {len(written)} were written")
    check(len(os.listdir(os.path.join(tmp, "out"))) == 400, "the rerun did not complete the batch")


def case_odd_but_valid_inputs(tmp):
    # Grayscale, palette, 16-bit, RGBA, 1x1, all-black and all-white images all work.
    helper = os.path.join(os.path.dirname(__file__), "make_odd_images.py")
    subprocess.run([sys.executable, helper, tmp], check=True)
    for name in sorted(f for f in os.listdir(tmp) if f.startswith("odd_")):
        expect(["apply", name, "-o", "n_" + name], OK, tmp)
        check(os.path.exists(os.path.join(tmp, "n_" + name)), f"{name}: no output")


def case_demo(tmp):
    out, _ = expect(["demo", "-o", "d", "--size", "256"], OK, tmp, needle="recovered")
    for f in ("reference.png", "source.png", "normalized.png", "before_after.png", "target.json"):
        check(os.path.exists(os.path.join(tmp, "d", f)), f"demo did not write {f}")
    # The recovered stain vectors are within a degree of the true ones.
    errors = [float(line.split()[-2]) for line in out.splitlines() if line.endswith(" deg")]
    check(len(errors) == 4 and max(errors) < 1.0, f"demo stain errors {errors}")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vahanorm", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--case", required=True)
    ARGS = ap.parse_args()
    ARGS.vahanorm = os.path.abspath(ARGS.vahanorm)
    fn = globals().get("case_" + ARGS.case)
    if fn is None:
        print(f"no such case: {ARGS.case}")
        return 2
    tmp = tempfile.mkdtemp(prefix="vahanorm-cli-")
    try:
        fn(tmp)
    except Failure as f:
        print(f"FAILED {ARGS.case}: {f}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"passed {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
