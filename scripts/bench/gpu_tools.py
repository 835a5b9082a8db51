#!/usr/bin/env python3
"""Per-tile Vahadane estimation + transform on the GPU with the Python normalizers vahanorm is
compared with: wsi-normalizer's TorchVahadaneNormalizer and torch-staintools' Vahadane
normalizer. Same tiles and target as vahanorm_bench_gpu --raw (8-bit RGB, back to back, from
vahanorm-synth-tiles --raw), warm (a few tiles first), timed to the last tile's result on the
host; prints markdown table rows.

    gpu_tools.py --wheels DIR --tiles TILES.rgb --count N --size 512 --reference REF.rgb [--ref-size 1024]

The wheels are unpacked into a temporary folder (no pip, no network). Dependencies that the
packages import but whose code their GPU paths never call (OpenCV, SPAMS, matplotlib, kornia-rs;
SciPy and torchvision when absent) are stood in for, and each stand-in is listed in the output:
scipy.sparse.linalg.eigsh (largest eigenvalue of a 2x2 Gram matrix in TorchVahadane's ISTA step
size) by numpy.linalg.eigvalsh, torchvision's convert_image_dtype by its float32 rule."""
import argparse
import os
import sys
import tempfile
import time
import types
import zipfile

import numpy as np
import torch

STANDINS = []


def unpack(wheels, into):
    for name in sorted(os.listdir(wheels)):
        if name.endswith(".whl"):
            with zipfile.ZipFile(os.path.join(wheels, name)) as z:
                z.extractall(into)
    sys.path.insert(0, into)


def importable(name):
    try:
        __import__(name)
        return True
    except Exception:
        return False


def stand_in(name, **attrs):
    parts = name.split(".")
    for k in list(sys.modules):  # drop what a failed import left half-initialised
        if k == parts[0] or k.startswith(parts[0] + "."):
            del sys.modules[k]
    for i in range(1, len(parts) + 1):
        mod = ".".join(parts[:i])
        if mod not in sys.modules:
            sys.modules[mod] = types.ModuleType(mod)
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[mod])
    for k, v in attrs.items():
        setattr(sys.modules[name], k, v)
    STANDINS.append(name)


def install_standins():
    if not importable("kornia_rs"):
        stand_in("kornia_rs")  # kornia's image file I/O only, imported by `import kornia`
    if not importable("cv2"):
        stand_in("cv2")  # imported at module level; the GPU paths use kornia
    if not importable("spams"):
        stand_in("spams")  # the CPU (staintools) estimator only
    if not importable("matplotlib"):
        stand_in("matplotlib.pyplot")
    if not importable("scipy.sparse.linalg"):
        def eigsh(a, k=1, which="LM", return_eigenvectors=True, **_):
            w = np.linalg.eigvalsh(np.asarray(a, dtype=np.float64))
            top = w[np.argsort(-np.abs(w))[:k]]
            return top if not return_eigenvectors else (top, None)
        stand_in("scipy.sparse.linalg", eigsh=eigsh)
    if not importable("torchvision.transforms.functional"):
        def convert_image_dtype(image, dtype=torch.float):
            if image.is_floating_point():
                return image.to(dtype)
            return image.to(dtype) / float(torch.iinfo(image.dtype).max)
        stand_in("torchvision.transforms.functional", convert_image_dtype=convert_image_dtype)


def timed(fn, tiles, warm):
    for t in tiles[:warm]:
        fn(t)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for t in tiles:
        out = fn(t)
    torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", required=True)
    ap.add_argument("--tiles", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--ref-size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32, help="torch-staintools tiles per call")
    ap.add_argument("--only", choices=["wsi", "tsi"], default=None)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device for PyTorch", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    tiles = np.fromfile(a.tiles, dtype=np.uint8).reshape(-1, a.size, a.size, 3)[: a.count]
    ref = np.fromfile(a.reference, dtype=np.uint8).reshape(a.ref_size, a.ref_size, 3)
    tmp = tempfile.mkdtemp(prefix="vn-wheels-")
    unpack(a.wheels, tmp)
    install_standins()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}; stand-ins: {', '.join(STANDINS) or 'none'}")
    rows = []
    gpu_tiles = [torch.from_numpy(t).to(dev) for t in tiles]

    if a.only in (None, "wsi"):
        try:
            from wsi_normalizer import TorchVahadaneNormalizer
            n = TorchVahadaneNormalizer(device="cuda", staintools_estimate=False)
            n.fit(torch.from_numpy(ref).to(dev))
            secs, out = timed(lambda t: n.transform(t), gpu_tiles, 3)
            ok = out.shape == tiles[0].shape
            rows.append(("wsi-normalizer TorchVahadaneNormalizer (GPU estimate)", len(tiles) / secs,
                         f"{len(tiles)} tiles one by one, output {'ok' if ok else 'BAD SHAPE'}"))
        except Exception as e:  # report, keep going
            rows.append(("wsi-normalizer TorchVahadaneNormalizer (GPU estimate)", None, f"failed: {e!r}"[:300]))

    if a.only in (None, "tsi"):
        # The package's default: torch.compile of its dictionary learning (compiled on the warm-up
        # batch); if compiling fails on this machine, its eager mode, said in the notes.
        from torch_staintools.constants import CONFIG
        for compiled in (True, False):
            CONFIG.ENABLE_COMPILE = compiled
            try:
                from torch_staintools.normalizer import NormalizerBuilder
                n = NormalizerBuilder.build("vahadane", device=dev, rng=1)
                n = n.to(dev)
                n.fit(torch.from_numpy(ref).to(dev).permute(2, 0, 1)[None].float() / 255)
                batches = [torch.stack(gpu_tiles[i:i + a.batch]).permute(0, 3, 1, 2).float() / 255
                           for i in range(0, len(gpu_tiles), a.batch)]
                secs, out = timed(lambda b: n.transform(b), batches, 1)
                mode = "torch.compile" if compiled else "eager (torch.compile failed here)"
                rows.append(("torch-staintools Vahadane", len(tiles) / secs,
                             f"{len(tiles)} tiles in batches of {a.batch}, {mode}, output {tuple(out.shape)}"))
                break
            except Exception as e:
                if not compiled:
                    rows.append(("torch-staintools Vahadane", None, f"failed: {e!r}"[:300]))
                else:
                    print(f"torch-staintools with torch.compile failed: {e!r}"[:500], file=sys.stderr)

    for name, rate, notes in rows:
        value = f"{rate:.1f}" if rate is not None else "FAIL"
        print(f"| {name} | {value} | tiles/s | {a.size}x{a.size}, per-tile estimate + transform, warm; {notes} |")
    return 0 if all(r[1] is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
