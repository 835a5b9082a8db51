#!/usr/bin/env python3
"""The executable's side of the CUDA module boundary, without a GPU: a stand-in module
(fake_plugin.cpp) throws from inside its backend calls; the CLI must end with the error's
documented exit code and message, and refuse a module whose struct layout differs.

    test_module_boundary.py --vahanorm PATH --module PATH
"""
import argparse
import os
import subprocess
import sys
import tempfile

DATA, INPUT, DEVICE = 65, 66, 69


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vahanorm", required=True)
    ap.add_argument("--module", required=True)
    a = ap.parse_args()
    a.vahanorm, a.module = os.path.abspath(a.vahanorm), os.path.abspath(a.module)
    failures = []
    with tempfile.TemporaryDirectory(prefix="vahanorm-boundary-") as tmp:
        subprocess.run([a.vahanorm, "-q", "demo", "-o", "samples", "--size", "128"], cwd=tmp, check=True,
                       capture_output=True)
        tile = os.path.join(tmp, "samples", "source.png")
        cases = [
            ("data", DATA, "fake module: no tissue on the fake device"),
            ("std", INPUT, "fake module: a std::runtime_error"),
            ("unknown", DEVICE, "CUDA backend: fake module: an int was thrown"),
            ("layout", DEVICE, "not a CUDA backend of this vahanorm build (TileOutcome is"),
        ]
        for mode, code, needle in cases:
            env = dict(os.environ, VAHANORM_CUDA_PLUGIN=a.module, VAHANORM_FAKE_PLUGIN_MODE=mode)
            for args in (["estimate", tile, "-o", "m.json"], ["apply", tile, "-o", "out.png"]):
                p = subprocess.run([a.vahanorm, "--device", "cuda"] + args, cwd=tmp, env=env, capture_output=True,
                                   text=True, timeout=120)
                errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
                ok = p.returncode == code and any(needle in line for line in errors) and len(errors) == 1
                for name in ("m.json", "out.png"):
                    if os.path.exists(os.path.join(tmp, name)):
                        ok = False
                print(f"{mode:8} {args[0]:8} exit {p.returncode} (want {code}): {'ok' if ok else 'FAIL'}  "
                      f"{errors[0] if errors else p.stderr.strip()[:200]}")
                if not ok:
                    failures.append(f"{mode} {args[0]}: exit {p.returncode}\n{p.stderr}")
    for f in failures:
        print("FAILED", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
