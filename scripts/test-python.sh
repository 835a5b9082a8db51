#!/usr/bin/env bash
# Builds the Python package (python/) with pip into a virtual environment under build/ and runs
# its tests, which compare it with the CLI in build/app (run scripts/build.sh first).
# Build tools (scikit-build-core, nanobind) and pytest come from PyPI into that environment;
# numpy is Debian's (--system-site-packages). The package's build folder, build/python/, is
# kept, so a rerun recompiles only what changed.
#   scripts/test-python.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${VAHANORM_PYTHON:-/usr/bin/python3}
venv=build/pyenv
[[ -x $venv/bin/python ]] || "$python" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check scikit-build-core nanobind pytest mypy
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
  --config-settings=cmake.define.VAHANORM_WERROR=ON ./python
# From the tests' folder, so that `import vahanorm` is the installed package, not ./python/vahanorm.
cd python/tests
exec "../../$venv/bin/python" -m pytest -p no:cacheprovider -q -ra "$@" .
