"""Model: a stain model, held as the text of the model file the command line reads and writes."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

from . import _core

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PathLike = Union[str, "os.PathLike[str]"]


class Model:
    """A stain model: the stain matrix (row 0 hematoxylin, row 1 eosin, unit rows in optical
    density) and the 99th-percentile concentrations, with the estimation parameters and the
    provenance. The same JSON schema as ``vahanorm fit`` / ``vahanorm estimate`` files
    (README.md, "The model file"); every constructor validates it like the command line does.

    ``Model(stain_matrix, max_concentrations)`` makes one by hand; ``Model.load(path)``,
    ``Model.from_json(text)``, ``Model.builtin()``, ``vahanorm.fit`` and ``vahanorm.estimate``
    make the others. Models are immutable, comparable and picklable.
    """

    __slots__ = ("_json", "_dict")
    _json: str
    _dict: Optional[Dict[str, Any]]

    def __init__(
        self,
        stain_matrix: "npt.ArrayLike",
        max_concentrations: "npt.ArrayLike",
        params: Optional[Dict[str, Any]] = None,
        source: Optional[Dict[str, Any]] = None,
    ) -> None:
        import json

        from ._api import _params_json

        rows = [[float(v) for v in row] for row in _rows(stain_matrix)]
        maxc = [float(v) for v in _rows(max_concentrations)]
        text = _core.model_from_parts(rows, maxc, _params_json(params or {}), json.dumps(source or {}))
        self._set(text)

    def _set(self, text: str) -> None:
        object.__setattr__(self, "_json", text)
        object.__setattr__(self, "_dict", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Model is immutable")

    @classmethod
    def _from_checked(cls, text: str) -> "Model":
        m = cls.__new__(cls)
        m._set(text)
        return m

    @classmethod
    def from_json(cls, text: str) -> "Model":
        """A model from the text of a model file; DataError (the CLI's message) if it is not one."""
        if not isinstance(text, str):
            raise TypeError(f"Model.from_json expects a str, got {type(text).__name__}")
        _core.model_check(text, "model")
        return cls._from_checked(text)

    @classmethod
    def load(cls, path: PathLike) -> "Model":
        """Reads a model file written by ``vahanorm fit``/``estimate`` or ``Model.save``."""
        return cls._from_checked(_core.model_load(os.fspath(path)))

    @classmethod
    def builtin(cls) -> "Model":
        """The built-in reference (the H&E reference of Macenko et al. 2009), the CLI's default target."""
        return cls._from_checked(_core.builtin_reference())

    def save(self, path: PathLike) -> None:
        """Writes the model file atomically (a temporary name, then a rename)."""
        _core.write_file(os.fspath(path), self._json)

    def to_json(self) -> str:
        """The model file's text (exactly what ``save`` writes)."""
        return self._json

    def _data(self) -> Dict[str, Any]:
        if self._dict is None:
            import json

            object.__setattr__(self, "_dict", json.loads(self._json))
        assert self._dict is not None
        return self._dict

    @property
    def stain_matrix(self) -> "npt.NDArray[np.float64]":
        """(2, 3) float64: row 0 hematoxylin, row 1 eosin, in optical density (R, G, B)."""
        import numpy as np

        return np.array(self._data()["stain_matrix"], dtype=np.float64)

    @property
    def max_concentrations(self) -> "npt.NDArray[np.float64]":
        """(2,) float64: the percentile concentrations of hematoxylin and eosin."""
        import numpy as np

        return np.array(self._data()["max_concentrations"], dtype=np.float64)

    @property
    def params(self) -> Dict[str, Any]:
        """The estimation parameters recorded in the file."""
        return dict(self._data().get("params", {}))

    @property
    def source(self) -> Dict[str, Any]:
        """Provenance: path(s), SHA-256, tissue pixels."""
        return dict(self._data().get("source", {}))

    @property
    def stain_angle_deg(self) -> float:
        """The angle between the two stain vectors, in degrees."""
        return float(_core.stain_angle_deg(self._json))

    def __reduce__(self) -> Any:
        return (Model.from_json, (self._json,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return self._json == other._json or self._data() == other._data()

    def __hash__(self) -> int:
        import json

        return hash(json.dumps(self._data(), sort_keys=True))

    def __repr__(self) -> str:
        d = self._data()
        w = d["stain_matrix"]
        c = d["max_concentrations"]
        src = d.get("source", {}).get("path", "")
        return (
            f"Model(H=[{w[0][0]:.4f}, {w[0][1]:.4f}, {w[0][2]:.4f}], E=[{w[1][0]:.4f}, {w[1][1]:.4f}, {w[1][2]:.4f}], "
            f"max_concentrations=[{c[0]:.4f}, {c[1]:.4f}]" + (f", source={src!r})" if src else ")")
        )


def _rows(x: Any) -> Sequence[Any]:
    if hasattr(x, "tolist"):
        return x.tolist()  # type: ignore[no-any-return]
    return list(x)
