"""The package is typed (py.typed, annotations, the _core stub): mypy --strict accepts it and a
user's code against it, and rejects a wrong call."""
import os
import subprocess
import sys

USER_CODE = '''
import numpy as np
import numpy.typing as npt
import vahanorm
import vahanorm.staintools as staintools

tile: npt.NDArray[np.uint8] = np.zeros((64, 64, 3), np.uint8)
target: vahanorm.Model = vahanorm.fit("ref.png", seed=1)
norm = vahanorm.Normalizer(target, threads=1)
out: npt.NDArray[np.uint8] = norm.transform(tile)
w: npt.NDArray[np.float64] = target.stain_matrix
rec: dict = vahanorm.apply_slide("a.svs", "b.tif", target=target)
n = staintools.StainNormalizer(method="vahadane")
'''


def mypy(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
                           *args], capture_output=True, text=True, cwd=tmp_path)


def user_file(tmp_path, code):
    f = tmp_path / "user.py"
    f.write_text(code)
    return str(f)


def test_mypy_strict_accepts_the_package_and_its_use(tmp_path):
    p = mypy(tmp_path, "-p", "vahanorm")
    assert p.returncode == 0, p.stdout + p.stderr
    p = mypy(tmp_path, user_file(tmp_path, USER_CODE.replace("rec: dict", "rec: dict[str, object]")))
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_rejects_a_wrong_call(tmp_path):
    p = mypy(tmp_path, user_file(tmp_path, USER_CODE.replace("rec: dict", "rec: dict[str, object]") + "vahanorm.Model.load(3)\n"))
    assert p.returncode == 1 and 'incompatible type "int"' in p.stdout, p.stdout + p.stderr
