#!/usr/bin/env python3
"""Broken (and odd but valid) inputs through the vahanorm command line, one case of
cases.tsv at a time (CTest runs one entry per case):

    run_case.py --vahanorm BIN --make-samples BIN [--make-slide BIN] --case NAME
    run_case.py ... --list          the case names
    run_case.py ... --all           every case, a summary at the end

Each case builds its input in a fresh directory (generators below; nothing is copied from
elsewhere), runs the command and checks, besides the expected exit code and message:
  - a failing run leaves no output file behind;
  - no file with "vahanorm-tmp" in its name is left in the output directory;
  - a failing run prints exactly one stderr line starting with "error:", and it names the
    file the case says it should (the input by default); a successful run prints none;
  - every stderr line is a log line ("info: ...", "warning: ...", ...): no stray library output;
  - the JSON report (--report is always given) and any JSON output hold no NaN, Infinity or
    null number, and the report's exit code is the process's;
  - no error line names a temporary file, and no lock file is left behind.
Hostile outputs, values and signals (options column): an output that exists before the run
(a device node, a FIFO, a symbolic link) must be left as it was (keep_out) or be a link whose
target was replaced (out_link); a run may get an environment variable (env=K=V), run as user
nobody under RLIMIT_NPROC (nproc=N: a thread limit that root would ignore), get a signal once
the slide pipeline starts (signal=TERM|HUP), or lose its stderr and stdout reader after the first
line (close_pipe, as `2>&1 | head -n 1`).
Exit 0: passed; 1: failed; 77: skipped (the reason is printed), e.g. a case that needs
root powers the machine does not give.
"""
import argparse
import fcntl
import json
import os
import re
import resource
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = None
SKIP = 77


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---- file builders ----------------------------------------------------------------------------

def make_sample(kind, path, w=64, h=64):
    """A valid image of `kind` (vn_make_samples list) written by the real codecs."""
    subprocess.run([ARGS.make_samples, "image", kind, path, str(w), str(h)], check=True)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def truncate(path, keep):
    data = read(path)
    write(path, data[: int(len(data) * keep)])
    return path


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width, height, color_type=2, bit_depth=8, interlace=0, idat=b""):
    """A PNG whose IHDR claims width x height; the pixel data (idat) is usually missing."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64)) +
            png_chunk(b"IEND", b""))


def jpeg_patch_size(data, width, height):
    """Rewrites the frame header (SOFn) of a JPEG to claim other dimensions."""
    i = 2
    while i + 4 <= len(data):
        check(data[i] == 0xFF, "jpeg_patch_size: lost marker sync")
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
            return data[: i + 5] + struct.pack(">HH", height, width) + data[i + 9:]
        i += 2 + length
    raise Failure("jpeg_patch_size: no SOF marker")


def tiff_ifd(data):
    """(byte order, {tag: (type, count, value_or_offset, entry_offset)}) of the first IFD of a classic TIFF."""
    bo = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(bo + "I", data[4:8])
    (n,) = struct.unpack(bo + "H", data[ifd:ifd + 2])
    tags = {}
    for k in range(n):
        at = ifd + 2 + 12 * k
        tag, typ, count = struct.unpack(bo + "HHI", data[at:at + 8])
        if typ == 3 and count == 1:
            value = struct.unpack(bo + "H", data[at + 8:at + 10])[0]
        else:
            value = struct.unpack(bo + "I", data[at + 8:at + 12])[0]
        tags[tag] = (typ, count, value, at)
    return bo, tags


def tiff_set_long_or_short(data, tag, value):
    bo, tags = tiff_ifd(data)
    typ, count, _, at = tags[tag]
    check(count == 1, f"tag {tag} has {count} values")
    if typ == 3 and value > 0xFFFF:
        typ = 4  # SHORT -> LONG
        data = data[: at + 2] + struct.pack(bo + "H", 4) + data[at + 4:]
    field = struct.pack(bo + "H", value) + b"\0\0" if typ == 3 else struct.pack(bo + "I", value)
    return data[: at + 8] + field + data[at + 12:]


def tiff_offsets(data, tag):
    """The values of an offsets/byte-counts array tag (SHORT, LONG or LONG8 not supported)."""
    bo, tags = tiff_ifd(data)
    typ, count, value, _ = tags[tag]
    size = 2 if typ == 3 else 4
    fmt = bo + ("H" if typ == 3 else "I")
    if count * size <= 4:
        raw = struct.pack(bo + "I", value)[: count * size] if typ == 4 else data[tags[tag][3] + 8:tags[tag][3] + 8 + count * size]
        return [struct.unpack(fmt, raw[k * size:(k + 1) * size])[0] for k in range(count)], None
    return [struct.unpack(fmt, data[value + k * size:value + (k + 1) * size])[0] for k in range(count)], (value, size, fmt)


def json_model(stain, max_conc, extra=""):
    return ('{"format":"vahanorm-model","version":1,"stain_matrix":%s,"max_concentrations":%s%s}\n'
            % (stain, max_conc, extra))


GOOD_STAIN = "[[0.5626,0.7201,0.4062],[0.2159,0.8012,0.5581]]"


# ---- generators: each prepares the case directory and returns the substitutions -----------------
# {in}: the input (relative to the case directory, the working directory of the run);
# {out}: the output file; {model}: a model file; {dir}: the case directory.

def gen_valid(kind, name, w=64, h=64):
    def g(d):
        make_sample(kind, os.path.join(d, name), w, h)
        return {"in": name}
    return g


def gen_truncated(kind, name, keep):
    def g(d):
        truncate(make_sample(kind, os.path.join(d, name), 96, 96), keep)
        return {"in": name}
    return g


def gen_bytes(name, data):
    def g(d):
        write(os.path.join(d, name), data() if callable(data) else data)
        return {"in": name}
    return g


def gen_jpeg_claiming(w, h):
    def g(d):
        p = make_sample("jpeg-rgb", os.path.join(d, "in.jpg"), 32, 32)
        write(p, jpeg_patch_size(read(p), w, h))
        return {"in": "in.jpg"}
    return g


def gen_tiff_field(tag, value, kind="tiff-rgb"):
    return gen_tiff_fields({tag: value}, kind)


def gen_tiff_fields(fields, kind="tiff-rgb"):
    def g(d):
        p = make_sample(kind, os.path.join(d, "in.tif"), 32, 32)
        data = read(p)
        for tag, value in fields.items():
            data = tiff_set_long_or_short(data, tag, value)
        write(p, data)
        return {"in": "in.tif"}
    return g


def gen_tiff_bad_tile_offset(d):
    p = make_sample("tiff-rgb-tiled-deflate", os.path.join(d, "in.tif"), 64, 64)
    data = bytearray(read(p))
    offsets, where = tiff_offsets(bytes(data), 324)  # TileOffsets
    check(where is not None and len(offsets) == 16, "expected 16 tile offsets")
    at, size, fmt = where
    struct.pack_into(fmt, data, at + 5 * size, 0x7FFFFF00)  # tile 5 points far past the end of the file
    write(p, bytes(data))
    return {"in": "in.tif"}


def gen_text_svs(d):
    write(os.path.join(d, "in.svs"), b"Aperio Image Library v10.0.51\nthis is a text file, not a slide\n")
    return {"in": "in.svs"}


def gen_directory(d):
    os.mkdir(os.path.join(d, "in.png"))
    return {"in": "in.png"}


def gen_fifo(d):
    os.mkfifo(os.path.join(d, "in.png"))
    return {"in": "in.png"}


def gen_unreadable(d):
    """A valid image in a directory nobody may enter; the run is made as user `nobody`."""
    os.mkdir(os.path.join(d, "locked"))
    make_sample("png-rgb", os.path.join(d, "locked", "in.png"))
    os.chmod(os.path.join(d, "locked"), 0)
    os.chmod(d, 0o777)
    return {"in": "locked/in.png"}


def gen_output_under_file(d):
    make_sample("png-rgb", os.path.join(d, "in.png"))
    write(os.path.join(d, "afile"), b"x")
    return {"in": "in.png", "out": "afile/out.png"}


def gen_full_fs(d):
    """An input whose normalized output cannot fit on a 200 KiB tmpfs mounted at ./full."""
    make_sample("png-rgb", os.path.join(d, "in.png"), 640, 480)
    gen_full_fs_mount(d)
    return {"in": "in.png", "out": "full/out.png"}


def gen_full_fs_mount(d):
    mnt = os.path.join(d, "full")
    os.mkdir(mnt)
    if os.geteuid() != 0:
        raise Skip("needs root to mount a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k,mode=0755", "vahanorm-test-full", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'mount failed'}); a full disk was not tested")
    CLEANUP.append(lambda: subprocess.run(["umount", "-l", mnt], capture_output=True))
    return {}


def gen_same_as_input(d):
    make_sample("png-rgb", os.path.join(d, "in.png"))
    return {"in": "in.png", "out": "in.png"}


def gen_model(text):
    def g(d):
        make_sample("png-rgb", os.path.join(d, "in.png"))
        write(os.path.join(d, "model.json"), text.encode())
        return {"in": "in.png", "model": "model.json"}
    return g


def gen_slide(mutate=None):
    def g(d):
        if not ARGS.make_slide:
            raise Failure("no --make-slide tool given: slide cases need make-synthetic-slide")
        p = os.path.join(d, "in.svs")
        subprocess.run([ARGS.make_slide, p, "--width", "1536", "--height", "1024", "--tile", "256"], check=True,
                       capture_output=True)
        if mutate:
            write(p, mutate(read(p)))
        return {"in": "in.svs"}
    return g


def corrupt_middle_tile(data):
    """Overwrites the entropy-coded data of one full-resolution tile with garbage."""
    offsets, where = tiff_offsets(data, 324)
    counts, _ = tiff_offsets(data, 325)
    k = len(offsets) // 2
    start, n = offsets[k], counts[k]
    check(n > 200, "tile too small to corrupt")
    # Keep the tile's JPEG headers (the first bytes), garble the scan data after them.
    body = bytearray(data)
    for i in range(start + n // 2, start + n - 2):
        body[i] = (i * 73 + 41) & 0xFF
    return bytes(body)


def gen_out_special(kind, out="out.png"):
    """A valid input, and an output path that already exists and is not a regular file. Only
    ever made inside the case directory: a test never points vahanorm at the real /dev/null."""
    def g(d):
        make_sample("png-rgb", os.path.join(d, "in.png"))
        o = os.path.join(d, out)
        if kind == "chardev":
            if os.geteuid() != 0:
                raise Skip("needs root to make a device node (mknod); a device output was not tested")
            os.mknod(o, 0o666 | 0o020000, os.makedev(1, 3))  # what /dev/null is
        elif kind == "fifo":
            os.mkfifo(o)
        elif kind == "link_stdout":
            os.symlink("/proc/self/fd/1", o)
        elif kind == "dir":
            os.mkdir(o)
        elif kind == "dangling":
            os.symlink("nowhere/missing.png", o)
        return {"in": "in.png", "out": out}
    return g


def gen_out_link(locked=False):
    """A symbolic link out.png to a regular file real.png (a different, smaller image). With
    locked, the lock of real.png is held (as another vahanorm writing real.png would hold it)."""
    def g(d):
        make_sample("png-rgb", os.path.join(d, "in.png"))
        make_sample("png-rgb", os.path.join(d, "real.png"), 16, 16)
        os.symlink("real.png", os.path.join(d, "out.png"))
        if locked:
            fd = os.open(os.path.join(d, ".real.png.vahanorm-lock"), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            CLEANUP.append(lambda: os.close(fd))
        return {"in": "in.png", "out": "out.png"}
    return g


def gen_out_complete(d):
    make_sample("png-rgb", os.path.join(d, "in.png"))
    make_sample("png-rgb", os.path.join(d, "out.png"))
    return {"in": "in.png", "out": "out.png"}


def gen_big_slide(size):
    def g(d):
        if not ARGS.make_slide:
            raise Failure("no --make-slide tool given: slide cases need make-synthetic-slide")
        subprocess.run([ARGS.make_slide, os.path.join(d, "in.svs"), "--width", str(size), "--height", str(size),
                        "--tile", "256"], check=True, capture_output=True)
        return {"in": "in.svs"}
    return g


def gen_slide_full_fs(d):
    """A slide whose pyramid cannot fit on a 200 KiB tmpfs mounted at ./full."""
    gen_big_slide(2048)(d)
    return dict(gen_full_fs_mount(d), **{"in": "in.svs", "out": "full/out.tif"})


GENERATORS = {
    "png_truncated": gen_truncated("png-rgb", "in.png", 0.5),
    "jpeg_truncated": gen_truncated("jpeg-rgb", "in.jpg", 0.5),
    "tiff_truncated": gen_truncated("tiff-rgb", "in.tif", 0.5),
    "png_zero_width": gen_bytes("in.png", lambda: png_claiming(0, 64)),
    "png_zero_height": gen_bytes("in.png", lambda: png_claiming(64, 0)),
    "jpeg_zero_height": gen_jpeg_claiming(32, 0),
    "tiff_zero_width": gen_tiff_field(256, 0),
    "tiff_zero_height": gen_tiff_field(257, 0),
    "png_huge": gen_bytes("in.png", lambda: png_claiming(65536, 65536)),
    "png_huge_rgba16_interlaced": gen_bytes("in.png", lambda: png_claiming(50000, 50000, 6, 16, 1)),
    "jpeg_huge": gen_jpeg_claiming(65500, 65500),
    "tiff_huge": gen_tiff_fields({256: 100000, 257: 100000}),
    "tiff_taller_than_strips": gen_tiff_fields({257: 100000}),
    "png_3000x3000_truncated": gen_bytes("in.png", lambda: png_claiming(3000, 3000)),
    "png_20000x20000_rgba16_no_data": gen_bytes("in.png", lambda: png_claiming(20000, 20000, 6, 16, 1)),
    "png_64x64": gen_valid("png-rgb", "in.png"),
    "tiff_bad_tile_offset": gen_tiff_bad_tile_offset,
    "text_svs": gen_text_svs,
    "directory": gen_directory,
    "fifo": gen_fifo,
    "unreadable": gen_unreadable,
    "output_under_file": gen_output_under_file,
    "full_fs": gen_full_fs,
    "same_as_input": gen_same_as_input,
    "model_not_json": gen_model("this is not JSON at all\n"),
    "model_nan": gen_model(json_model(GOOD_STAIN, "[NaN,1.0]")),
    "model_inf": gen_model(json_model("[[1e999,0.7201,0.4062],[0.2159,0.8012,0.5581]]", "[1.9705,1.0308]")),
    "model_inf_conc": gen_model(json_model(GOOD_STAIN, "[1e999,1.0308]")),
    "model_negative": gen_model(json_model("[[0.5626,0.7201,0.4062],[-0.2159,0.8012,0.5581]]", "[1.9705,1.0308]")),
    "model_negative_conc": gen_model(json_model(GOOD_STAIN, "[-1.9705,1.0308]")),
    "model_shape": gen_model(json_model("[[0.5626,0.7201],[0.2159,0.8012]]", "[1.9705,1.0308]")),
    "model_conc_shape": gen_model(json_model(GOOD_STAIN, "[1.9705]")),
    "model_parallel": gen_model(json_model("[[0.6,0.8,0.0],[0.6,0.8,0.0]]", "[1.0,1.0]")),
    "model_parallel_angle_param": gen_model(json_model("[[0.6,0.8,0.0],[0.6,0.8,0.0]]", "[1.0,1.0]",
                                                       ',"params":{"min_stain_angle_deg":0}')),
    "model_not_unit": gen_model(json_model("[[5.626,7.201,4.062],[0.2159,0.8012,0.5581]]", "[1.9705,1.0308]")),
    "model_tiny_conc": gen_model(json_model(GOOD_STAIN, "[1e-320,1.0308]")),
    "model_wrong_format": gen_model('{"format":"something-else","version":1}\n'),
    "model_empty": gen_model(""),
    "jpeg_gray": gen_valid("jpeg-gray", "in.jpg"),
    "jpeg_1x1": gen_valid("jpeg-rgb", "in.jpg", 1, 1),
    "jpeg_cmyk": gen_valid("jpeg-cmyk", "in.jpg"),
    "jpeg_progressive": gen_valid("jpeg-progressive", "in.jpg"),
    "tiff_rgb16": gen_valid("tiff-rgb16", "in.tif"),
    "tiff_rgba": gen_valid("tiff-rgba", "in.tif"),
    "tiff_gray16": gen_valid("tiff-gray16", "in.tif"),
    "tiff_palette": gen_valid("tiff-palette", "in.tif"),
    "tiff_tiled": gen_valid("tiff-rgb-tiled-deflate", "in.tif"),
    "tiff_tiled_uncompressed_16px": gen_valid("tiff-rgb-tiled", "in.tif"),
    "tiff_1x1": gen_valid("tiff-rgb", "in.tif", 1, 1),
    "slide": gen_slide(),
    "slide_corrupt_tile": gen_slide(corrupt_middle_tile),
    "slide_truncated": gen_slide(lambda data: data[: len(data) * 6 // 10]),
    "out_chardev": gen_out_special("chardev"),
    "out_fifo": gen_out_special("fifo"),
    "out_link_to_stdout": gen_out_special("link_stdout"),
    "out_dangling_link": gen_out_special("dangling"),
    "out_dir_json": gen_out_special("dir", "model.out"),
    "out_link_to_file": gen_out_link(),
    "out_link_locked": gen_out_link(locked=True),
    "out_complete": gen_out_complete,
    "slide_4096": gen_big_slide(4096),
    "slide_full_fs": gen_slide_full_fs,
}

CLEANUP = []


# ---- the table ----------------------------------------------------------------------------------

def load_cases():
    cases = {}
    with open(os.path.join(HERE, "cases.tsv")) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 7:
                raise SystemExit(f"cases.tsv:{lineno}: {len(cols)} columns, expected 7")
            name, gen, command, code, needle, names, options = cols
            if name in cases:
                raise SystemExit(f"cases.tsv:{lineno}: duplicate case {name}")
            if gen not in GENERATORS:
                raise SystemExit(f"cases.tsv:{lineno}: unknown generator {gen}")
            cases[name] = dict(name=name, gen=gen, command=command, code=int(code), needle=needle,
                               names=names, options=set(o for o in options.split(",") if o and o != "-"))
    return cases


# ---- running ------------------------------------------------------------------------------------

def limit_memory():
    # 3 GiB of address space: an image that claims billions of pixels is refused before any
    # allocation, so it never needs more. Not under sanitizers: their shadow memory needs far more.
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def sanitized():
    return bool(os.environ.get("VAHANORM_TEST_SANITIZED"))


def option_value(options, key):
    for o in options:
        if o.startswith(key + "="):
            return o[len(key) + 1:]
    return None


def as_nobody(cmd, what):
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        raise Skip(f"needs root and setpriv to run as another user; {what} not tested")
    cmd = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + cmd
    probe = subprocess.run(cmd[:5] + [ARGS.vahanorm, "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise Skip(f"user nobody cannot run {ARGS.vahanorm} ({probe.stderr.strip()}); {what} not tested")
    return cmd


def run_with_signal(cmd, cwd, env, sig, preexec):
    """Runs cmd, and sends it `sig` once the slide pipeline has started (its log line
    "..., N levels, reader ..."); returns (exit code, stdout, stderr)."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=preexec)
    err_lines = []
    sent = False
    for line in p.stderr:
        err_lines.append(line)
        if not sent and " levels, reader " in line:
            p.send_signal(sig)
            sent = True
    out = p.stdout.read()
    rc = p.wait(timeout=240)
    check(sent, "the run ended before the slide pipeline started: no signal was sent\n" + "".join(err_lines))
    return rc, out, "".join(err_lines)


def run_closed_pipe(cmd, cwd, env, preexec):
    """Runs cmd with stdout and stderr into one pipe, closed after the first line, as
    `cmd 2>&1 | head -n 1` does; returns (exit code, first line, "")."""
    r, w = os.pipe()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=w, stderr=w, preexec_fn=preexec)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        first = f.readline().decode(errors="replace")
    try:
        rc = p.wait(timeout=240)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure("the run did not end after its log pipe was closed")
    return rc, "", first


def run_vahanorm(argv, cwd, options):
    env = dict(os.environ)
    env.pop("VAHANORM_TARGET", None)
    env.pop("SLURM_CPUS_PER_TASK", None)
    extra = option_value(options, "env")
    if extra:
        k, _, v = extra.partition("=")
        env[k] = v
    cmd = [ARGS.vahanorm] + argv
    preexec = None
    nproc = option_value(options, "nproc")
    if nproc:
        # RLIMIT_NPROC binds only non-root users: run as nobody, with at most N processes and
        # threads of that user. The case directory is opened up for nobody.
        cmd = as_nobody(cmd, "a thread limit was")
        for root, dirs, files in os.walk(cwd):
            for x in dirs + files:
                os.chmod(os.path.join(root, x), 0o777 if x in dirs else 0o666)
        os.chmod(cwd, 0o777)
        n = int(nproc)
        preexec = lambda: resource.setrlimit(resource.RLIMIT_NPROC, (n, n))  # noqa: E731
    sig = option_value(options, "signal")
    if sig:
        return run_with_signal(cmd, cwd, env, getattr(signal, "SIG" + sig), preexec)
    if "close_pipe" in options:
        return run_closed_pipe(cmd, cwd, env, preexec)
    if nproc:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, preexec_fn=preexec)
        return p.returncode, p.stdout, p.stderr
    if "as_nobody" in options:
        setpriv = shutil.which("setpriv")
        if os.geteuid() != 0 or not setpriv:
            raise Skip("needs root and setpriv to run as another user; unreadable files were not tested")
        cmd = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + cmd
        probe = subprocess.run(cmd[:5] + [ARGS.vahanorm, "--version"], capture_output=True, text=True)
        if probe.returncode != 0:
            raise Skip(f"user nobody cannot run {ARGS.vahanorm} ({probe.stderr.strip()}); unreadable files were not tested")
    elif "no_memory_limit" not in options and not sanitized():
        preexec = limit_memory
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, preexec_fn=preexec)
    return p.returncode, p.stdout, p.stderr


def json_bad_numbers(value, where="$"):
    """Paths of NaN, Infinity and null values in a parsed JSON document."""
    bad = []
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        bad.append(f"{where}={value}")
    elif value is None and not where.endswith((".slide.mpp", ".slide.objective_power")):  # null = unknown there
        bad.append(f"{where}=null")
    elif isinstance(value, dict):
        for k, v in value.items():
            bad += json_bad_numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            bad += json_bad_numbers(v, f"{where}[{i}]")
    return bad


def check_json_file(path, what):
    text = open(path, encoding="utf-8", errors="replace").read()
    lowered = text.lower()
    check("nan" not in lowered.replace("vahanorm", ""), f"{what} mentions NaN:\n{text}")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise Failure(f"{what} is not valid JSON ({e}):\n{text}")
    bad = json_bad_numbers(doc)
    check(not bad, f"{what} holds NaN, Infinity or null: {bad}\n{text}")
    return doc


def run_case(case):
    d = tempfile.mkdtemp(prefix=f"vahanorm-broken-{case['name']}-")
    try:
        subs = {"dir": d, "out": "out.png", "model": "model.json"}
        for o in case["options"]:
            if o.startswith("out="):
                subs["out"] = o[4:]
        subs.update(GENERATORS[case["gen"]](d))
        argv = [a.format(**subs) for a in shlex.split(case["command"])]
        report = os.path.join(d, "report.json")
        argv += ["--report", report]
        before = set(os.listdir(d))
        outp0 = os.path.join(d, subs["out"])
        out_before = os.lstat(outp0) if os.path.lexists(outp0) else None
        target_before = read(outp0) if "out_link" in case["options"] else None
        rc, out, err = run_vahanorm(argv, d, case["options"])
        shown = f"\n$ vahanorm {' '.join(argv)}\nexit {rc}\nstdout:\n{out}\nstderr:\n{err}"
        expected = case["code"]
        check(rc == expected, f"exit {rc}, expected {expected}{shown}")
        if case["needle"] not in ("", "-"):
            alternatives = case["needle"].split("|")
            check(any(a in err for a in alternatives), f"stderr lacks {' or '.join(map(repr, alternatives))}{shown}")
        errors = [l for l in err.splitlines() if l.startswith("error:")]
        # Everything on stderr goes through the log: no stray library output (e.g. libtiff's
        # default handler printing "file.tif: ..." lines of its own).
        stray = [l for l in err.splitlines() if l.strip() and not re.match(r"(trace|debug|info|warning|error|critical): ", l)]
        check(not stray, f"stderr lines outside the log: {stray}{shown}")
        outp = os.path.join(d, subs["out"]) if "out" in subs else None
        out_dir = os.path.dirname(outp) if outp else d
        check(not any("vahanorm-tmp" in l for l in errors), f"an error line names a temporary file{shown}")
        absent = option_value(case["options"], "absent")
        if absent:
            check(absent not in err, f"stderr says {absent!r}{shown}")
        if expected == 0:
            check(not errors, f"a successful run printed error lines{shown}")
            if "no_output_check" not in case["options"]:
                check(outp and os.path.isfile(outp) and os.path.getsize(outp) > 0, f"no output {subs['out']}{shown}")
        else:
            check(len(errors) == 1, f"expected exactly one 'error:' line, got {len(errors)}{shown}")
            subject = {"in": subs.get("in"), "out": subs.get("out"), "model": subs.get("model"),
                       "-": None}[case["names"]]
            if subject:
                check(subject in errors[0] or os.path.basename(subject) in errors[0],
                      f"the error line does not name {subject}{shown}")
            if outp and subs["out"] != subs.get("in") and "keep_out" not in case["options"]:
                check(not os.path.lexists(outp), f"output {subs['out']} left behind by a failed run{shown}")
            new = set(os.listdir(d)) - before - {"report.json"}
            leftovers = [f for f in new if not os.path.isdir(os.path.join(d, f))]
            check(not leftovers, f"files left behind by a failed run: {sorted(leftovers)}{shown}")
        if os.path.isdir(out_dir):
            tmp = [f for f in os.listdir(out_dir) if "vahanorm-tmp" in f]
            check(not tmp, f"temporary files left in {out_dir}: {tmp}{shown}")
            locks = [f for f in os.listdir(out_dir) if f.endswith(".vahanorm-lock") and f not in before]
            check(not locks, f"lock files left in {out_dir}: {locks}{shown}")
        if "keep_out" in case["options"]:
            # An output that existed before (a device node, a FIFO, a link) is as it was.
            now = os.lstat(outp) if os.path.lexists(outp) else None
            check(now is not None and out_before is not None and
                  (now.st_mode, now.st_ino, now.st_rdev) == (out_before.st_mode, out_before.st_ino, out_before.st_rdev),
                  f"{subs['out']} was replaced or removed{shown}")
        if "out_link" in case["options"]:
            check(os.path.islink(outp), f"the symbolic link {subs['out']} was replaced by a file{shown}")
            check(read(outp) != target_before, f"the link's target was not rewritten{shown}")
        if "stdout_model" in case["options"]:
            doc = json.loads(out) if out.strip() else None
            check(isinstance(doc, dict) and doc.get("format") == "vahanorm-model",
                  f"standard output is not a vahanorm model{shown}")
        status = option_value(case["options"], "report_status")
        if status:
            check(os.path.exists(report), f"no report{shown}")
            recs = json.load(open(report)).get("inputs", [])
            check(any(r.get("input") == subs["in"] and r.get("status") == status for r in recs),
                  f"the report does not record {subs['in']} as {status}: {recs}{shown}")
        if os.path.exists(report):
            doc = check_json_file(report, "the report")
            check(doc.get("exit_code") == rc, f"report exit_code {doc.get('exit_code')} but the process exited {rc}")
        for f in os.listdir(d):
            if f.endswith(".json") and f not in ("report.json", subs.get("model")):
                check_json_file(os.path.join(d, f), f)
        return f"exit {rc}" + (f", {errors[0]}" if errors else "")
    finally:
        while CLEANUP:
            CLEANUP.pop()()
        for root, dirs, _ in os.walk(d):
            for x in dirs:
                try:
                    os.chmod(os.path.join(root, x), 0o755)
                except OSError:
                    pass
        shutil.rmtree(d, ignore_errors=True)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vahanorm", required=True)
    ap.add_argument("--make-samples", required=True)
    ap.add_argument("--make-slide", default="")
    ap.add_argument("--case")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--all", action="store_true")
    ARGS = ap.parse_args()
    ARGS.vahanorm = os.path.abspath(ARGS.vahanorm)
    ARGS.make_samples = os.path.abspath(ARGS.make_samples)
    if ARGS.make_slide:
        ARGS.make_slide = os.path.abspath(ARGS.make_slide)
    cases = load_cases()
    if ARGS.list:
        print("\n".join(cases))
        return 0
    names = list(cases) if ARGS.all else [ARGS.case]
    results = {}
    for name in names:
        if name not in cases:
            print(f"no such case: {name}")
            return 2
        try:
            what = run_case(cases[name])
            results[name] = "passed"
            if ARGS.all:
                print(f"{name}: passed ({what})")
                continue
        except Skip as s:
            results[name] = f"SKIPPED: {s}"
        except Failure as f:
            results[name] = f"FAILED: {f}"
        except Exception as e:  # a generator or the harness broke: show where
            import traceback
            results[name] = "FAILED (harness): " + "".join(traceback.format_exception(e))
        print(f"{name}: {results[name]}")
    if ARGS.all:
        print(f"\n{sum(r == 'passed' for r in results.values())}/{len(results)} passed")
    if any(r.startswith("FAILED") for r in results.values()):
        return 1
    if all(r.startswith("SKIPPED") for r in results.values()):
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
