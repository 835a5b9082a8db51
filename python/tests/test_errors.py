"""Errors: Python exception classes per error kind, carrying the CLI's messages."""
import os
import re

import numpy as np
import pytest

import vahanorm


def cli_message(cli, *args, expect):
    """The message of the CLI's error line (stderr 'error: MESSAGE')."""
    p = cli(*args, expect=expect)
    lines = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
    assert lines, p.stderr
    return lines[0][len("error: "):]


@pytest.mark.parametrize(
    "arr, shown",
    [
        (np.zeros((8, 8, 3), np.float32), "float32 (8, 8, 3)"),
        (np.zeros((8, 8, 3), np.float64), "float64 (8, 8, 3)"),
        (np.zeros((8, 8, 3), np.uint16), "uint16 (8, 8, 3)"),
        (np.zeros((8, 8), np.uint8), "uint8 (8, 8)"),
        (np.zeros((8, 8, 2), np.uint8), "uint8 (8, 8, 2)"),
        (np.zeros((2, 8, 8, 3), np.uint8), "uint8 (2, 8, 8, 3)"),
    ],
)
def test_wrong_images_raise_usage_error(arr, shown):
    norm = vahanorm.Normalizer(threads=1)
    with pytest.raises(vahanorm.UsageError) as e:
        norm.transform(arr)
    assert str(e.value) == f"image: expected uint8 pixels of shape (H, W, 3) or (H, W, 4), got {shown}"
    assert isinstance(e.value, ValueError) and e.value.exit_code == 64


def test_wrong_batches_and_empty_images():
    norm = vahanorm.Normalizer(threads=1)
    with pytest.raises(vahanorm.UsageError, match=r"batch: expected uint8 pixels of shape \(N, H, W, 3\)"):
        norm.transform_batch(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(vahanorm.UsageError, match=r"image: empty array \(0, 8, 3\)"):
        norm.transform(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(TypeError):
        norm.transform([[1, 2, 3]])


def test_nan_and_bad_models_raise_data_error():
    with pytest.raises(vahanorm.DataError, match=r"^model: stain_matrix has a non-finite entry$"):
        vahanorm.Model([[np.nan, 0.7, 0.3], [0.1, 0.9, 0.4]], [1.0, 1.0])
    with pytest.raises(vahanorm.DataError, match=r"^model: max_concentrations must be finite and positive$"):
        vahanorm.Model(vahanorm.Model.builtin().stain_matrix, [np.nan, 1.0])
    with pytest.raises(vahanorm.DataError, match="nearly parallel"):
        vahanorm.Model([[0.6, 0.7, 0.38729833462]] * 2, [1.0, 1.0])
    with pytest.raises(vahanorm.DataError, match=r"^model: not a JSON document$"):
        vahanorm.Model.from_json("{")


BAD_MODELS = {
    "negative.json": '{"format": "vahanorm-model", "version": 1, "stain_matrix": [[0.65, 0.70, -0.29], '
    '[0.07, 0.99, 0.11]], "max_concentrations": [1.8, 1.1]}',
    "parallel.json": '{"format": "vahanorm-model", "version": 1, "stain_matrix": [[0.6, 0.7, 0.38729833462], '
    '[0.6, 0.7, 0.38729833462]], "max_concentrations": [1.8, 1.1]}',
    "notmodel.json": '{"format": "something else"}',
    "shape.json": '{"format": "vahanorm-model", "version": 1, "stain_matrix": [[1, 0]], "max_concentrations": [1, 1]}',
}


@pytest.mark.parametrize("name", sorted(BAD_MODELS))
def test_bad_model_files_give_the_clis_message(cli, tmp_path, samples, name):
    path = tmp_path / name
    path.write_text(BAD_MODELS[name])
    msg = cli_message(cli, "apply", samples[1], "--target", path, "-o", tmp_path / "o.png", expect=65)
    with pytest.raises(vahanorm.DataError) as e:
        vahanorm.Model.load(path)
    assert str(e.value) == msg
    with pytest.raises(vahanorm.DataError) as e:
        vahanorm.Normalizer(target=str(path))
    assert str(e.value) == msg


def test_missing_and_corrupt_inputs_give_the_clis_message(cli, tmp_path):
    missing = str(tmp_path / "nope.png")
    msg = cli_message(cli, "estimate", missing, "-o", tmp_path / "m.json", expect=66)
    with pytest.raises(vahanorm.InputError) as e:
        vahanorm.estimate(missing)
    assert str(e.value) == msg and isinstance(e.value, OSError) and e.value.exit_code == 66
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    msg = cli_message(cli, "estimate", corrupt, "-o", tmp_path / "m.json", expect=66)
    with pytest.raises(vahanorm.InputError) as e:
        vahanorm.read_image(corrupt)
    assert str(e.value) == msg
    with pytest.raises(vahanorm.InputError):
        vahanorm.Model.load(tmp_path / "missing.json")


def test_no_tissue_gives_the_clis_message(cli, tiles, tmp_path):
    blank = os.path.join(tiles, "edge_histolab_almost-white-2.png")
    msg = cli_message(cli, "fit", "--ref", blank, "-o", tmp_path / "t.json", expect=65)
    with pytest.raises(vahanorm.DataError) as e:
        vahanorm.fit(blank)
    assert str(e.value) == msg
    msg = cli_message(cli, "estimate", blank, "-o", tmp_path / "t.json", expect=65)
    with pytest.raises(vahanorm.DataError) as e:
        vahanorm.estimate(blank)
    assert str(e.value) == msg
    # An array is named "image" where the CLI names the file.
    with pytest.raises(vahanorm.DataError) as e:
        vahanorm.estimate(vahanorm.read_image(blank))
    assert str(e.value) == msg.replace(blank, "image")


def test_bad_arguments_are_usage_errors(tile, tmp_path):
    with pytest.raises(vahanorm.UsageError, match="unknown estimation parameter 'sigma'"):
        vahanorm.estimate(tile, sigma=1)
    with pytest.raises(vahanorm.UsageError, match=r"sample_size: 10 is outside \[1000"):
        vahanorm.estimate(tile, sample_size=10)
    with pytest.raises(vahanorm.UsageError, match="device: expected cpu, cuda"):
        vahanorm.Normalizer(device="gpu")
    with pytest.raises(vahanorm.UsageError, match="threads"):
        vahanorm.Normalizer(threads=0)
    with pytest.raises(vahanorm.UsageError, match=r"unknown image extension '\.bmp'"):
        vahanorm.apply_tiles([], tmp_path / "out", out_format="bmp")


def test_cuda_without_a_module_is_a_device_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VAHANORM_CUDA_PLUGIN", str(tmp_path / "libvahanorm-cuda.so"))
    import subprocess
    import sys

    code = (
        "import vahanorm\n"
        "try:\n"
        "    vahanorm.Normalizer(device='cuda')\n"
        "except vahanorm.DeviceError as e:\n"
        "    print('DeviceError:', e)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"DeviceError: device cuda: this build of vahanorm has no CUDA backend (no {tmp_path}/libvahanorm-cuda.so)"


def test_every_error_is_a_vahanorm_error():
    for cls in (vahanorm.UsageError, vahanorm.InputError, vahanorm.DataError, vahanorm.OutputError,
                vahanorm.DeviceError, vahanorm.StoppedError, vahanorm.InternalError, vahanorm.ResourceError):
        assert issubclass(cls, vahanorm.VahanormError)
    # One class per kind of the core, each with the CLI's exit code for it (app/exit_codes.hpp).
    import re as _re

    repo = os.path.join(os.path.dirname(__file__), "..", "..")
    kinds = _re.findall(r"^\s+(\w+),", open(os.path.join(repo, "core", "error.hpp")).read().split("enum class ErrorKind")[1]
                        .split("};")[0], _re.M)
    codes = open(os.path.join(repo, "app", "exit_codes.hpp")).read()
    from vahanorm._errors import _BY_KIND

    assert len(_BY_KIND) == len(kinds)
    for kind, cls in zip(kinds, _BY_KIND):
        assert f"case ErrorKind::{kind}: return" in codes
        line = [l for l in codes.splitlines() if f"case ErrorKind::{kind}:" in l][0]
        const = line.split("return")[1].strip(" ;")
        value = int(_re.search(const + r" = (\d+)", codes).group(1))
        assert cls.exit_code == value, (kind, cls, value)
    assert re.match(r"\d+\.\d+\.\d+", vahanorm.__version__)


def _fake_module():
    from conftest import REPO

    path = os.environ.get("VAHANORM_FAKE_CUDA_MODULE",
                          os.path.join(REPO, "build", "tests", "libvahanorm_fake_cuda_plugin.so"))
    assert os.path.exists(path), f"the stand-in CUDA module is built with the tests: {path}"
    return path


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("data", "DataError 65 fake module: no tissue on the fake device"),
        ("std", "InputError 66 fake module: a std::runtime_error"),
        ("unknown", "DeviceError 69 CUDA backend: fake module: an int was thrown"),
    ],
)
def test_the_cuda_module_boundary_with_a_stand_in_module(tmp_path, mode, expected):
    """device="cuda" loads the module with the CLI's loader; what its backend throws arrives as
    the exception class of its kind (tests/cuda/fake_plugin.cpp, no GPU needed)."""
    import subprocess
    import sys

    code = (
        "import numpy as np, vahanorm\n"
        "n = vahanorm.Normalizer(device='cuda', threads=1)\n"
        "print(n.backend)\n"
        "try:\n"
        "    n.transform(np.full((64, 64, 3), 180, np.uint8))\n"
        "except vahanorm.VahanormError as e:\n"
        "    print(type(e).__name__, e.exit_code, str(e))\n"
    )
    env = dict(os.environ, VAHANORM_CUDA_PLUGIN=_fake_module(), VAHANORM_FAKE_PLUGIN_MODE=mode)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["cuda:0 (fake module)", expected]


def test_a_cuda_module_of_another_build_is_refused():
    import subprocess
    import sys

    code = (
        "import vahanorm\n"
        "try:\n"
        "    vahanorm.Normalizer(device='cuda')\n"
        "except vahanorm.DeviceError as e:\n"
        "    print(e)\n"
    )
    env = dict(os.environ, VAHANORM_CUDA_PLUGIN=_fake_module(), VAHANORM_FAKE_PLUGIN_MODE="layout")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"device cuda: {_fake_module()}: not a CUDA backend of this vahanorm build ("), p.stdout
