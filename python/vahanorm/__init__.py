"""vahanorm: structure-preserving (Vahadane) stain normalization of H&E images, numpy in,
numpy out, on the same compiled core as the ``vahanorm`` command line (docs/python.md).

    import vahanorm
    norm = vahanorm.Normalizer(target="target.json")   # or a reference image, or a Model
    out = norm.transform(tile)                         # (H, W, 3) uint8 -> (H, W, 3) uint8

Importing starts no threads and loads neither numpy's C extensions nor CUDA.
"""
from . import _core
from ._errors import (
    BlankTileWarning,
    DataError,
    DeviceError,
    InputError,
    InternalError,
    OutputError,
    ResourceError,
    StoppedError,
    UsageError,
    VahanormError,
    _BY_KIND,
)
from ._model import Model
from ._api import Normalizer, apply_slide, apply_tiles, estimate, fit, read_image, write_image

_core._set_error_classes(list(_BY_KIND))

__version__: str = _core.version()

__all__ = [
    "Model",
    "Normalizer",
    "fit",
    "estimate",
    "apply_slide",
    "apply_tiles",
    "read_image",
    "write_image",
    "VahanormError",
    "UsageError",
    "InputError",
    "DataError",
    "OutputError",
    "DeviceError",
    "StoppedError",
    "InternalError",
    "ResourceError",
    "BlankTileWarning",
]
