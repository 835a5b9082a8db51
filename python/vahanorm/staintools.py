"""The StainTools spelling of vahanorm's Vahadane normalizer, so that code written for
StainTools changes one import line (docs/python.md has the table):

    import vahanorm.staintools as staintools

    target = staintools.read_image("target.png")
    normalizer = staintools.StainNormalizer(method="vahadane")
    normalizer.fit(target)
    out = normalizer.transform(tile)

Like StainTools, ``transform`` estimates every image's own stains, then maps them onto the
target's. Only the Vahadane method exists here. StainTools' LuminosityStandardizer has no
counterpart: vahanorm's tissue test needs no brightness standardization beforehand.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ._api import Normalizer, fit, read_image
from ._errors import UsageError
from ._model import Model

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["StainNormalizer", "read_image"]


class StainNormalizer:
    """``StainNormalizer(method="vahadane")``, then ``fit(target)``, then ``transform(image)``.

    ``threads`` and ``device`` are passed to vahanorm.Normalizer (default: all cores, CPU).
    """

    def __init__(self, method: str = "vahadane", *, threads: Optional[int] = None, device: str = "cpu") -> None:
        if str(method).lower() != "vahadane":
            raise UsageError(f"vahanorm.staintools implements the 'vahadane' method only, not {method!r}")
        self._threads = threads
        self._device = device
        self._normalizer: Optional[Normalizer] = None
        self.target: Optional[Model] = None

    def fit(self, target: "npt.NDArray[np.uint8]") -> None:
        """Fits the target on a reference RGB uint8 image (or a path)."""
        self.target = fit(target, threads=self._threads, device=self._device)
        self._normalizer = Normalizer(self.target, threads=self._threads, device=self._device)

    def transform(self, I: "npt.NDArray[np.uint8]") -> "npt.NDArray[np.uint8]":  # noqa: E741 (StainTools' name)
        """The image normalized to the fitted target (its own stains estimated first)."""
        if self._normalizer is None:
            raise UsageError("StainNormalizer: call fit(target) before transform()")
        return self._normalizer.transform(I)

    @property
    def stain_matrix_target(self) -> "npt.NDArray[np.float64]":
        """The target's stain matrix (2, 3): rows hematoxylin, eosin (as StainTools)."""
        if self.target is None:
            raise UsageError("StainNormalizer: call fit(target) first")
        return self.target.stain_matrix

    @property
    def maxC_target(self) -> "npt.NDArray[np.float64]":
        """The target's percentile concentrations, shaped (1, 2) as StainTools keeps them."""
        if self.target is None:
            raise UsageError("StainNormalizer: call fit(target) first")
        return self.target.max_concentrations.reshape(1, 2)

    def __getstate__(self) -> Any:
        return {"threads": self._threads, "device": self._device, "target": self.target}

    def __setstate__(self, state: Any) -> None:
        self._threads = state["threads"]
        self._device = state["device"]
        self.target = state["target"]
        self._normalizer = None if self.target is None else Normalizer(self.target, threads=self._threads, device=self._device)
