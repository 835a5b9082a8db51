"""fit, estimate, Normalizer, apply_slide, apply_tiles, read_image, write_image."""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _core
from ._errors import BlankTileWarning, UsageError
from ._model import Model, PathLike

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Image = npt.NDArray[np.uint8]
    ImageOrPath = Union[Image, PathLike]

# Estimation parameters, by the names of the model file's "params" (README.md, core/model.hpp).
_PARAM_NAMES = (
    "seed",
    "sample_size",
    "lambda",
    "lambda_concentration",
    "percentile",
    "min_tissue_pixels",
    "min_tissue_fraction",
    "min_stain_angle_deg",
    "max_iterations",
    "tolerance",
)


def _params_json(params: Dict[str, Any]) -> str:
    """The estimation parameters as JSON for the core; ``lambda_`` is accepted for ``lambda``."""
    import json

    out: Dict[str, Any] = {}
    for key, value in params.items():
        name = "lambda" if key == "lambda_" else key
        if name not in _PARAM_NAMES:
            raise UsageError(f"unknown estimation parameter {key!r} (known: {', '.join(_PARAM_NAMES)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{name}: expected a number, got {type(value).__name__}")
        if value != value or value in (float("inf"), float("-inf")):
            raise UsageError(f"{name}: expected a finite number, got {value}")
        out[name] = value
    return json.dumps(out)


def _threads(threads: Optional[int]) -> int:
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads: expected a positive integer or None, got {threads!r}")
    return threads


def _device(device: str) -> str:
    if not isinstance(device, str):
        raise UsageError(f"device: expected a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    return device


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _sources(images_or_paths: Any) -> List[Any]:
    """One image, one path, an (N, H, W, C) stack, or a sequence of images and paths."""
    if _is_path(images_or_paths):
        return [os.fspath(images_or_paths)]
    ndim = getattr(images_or_paths, "ndim", None)
    if ndim == 4:
        return list(images_or_paths)
    if ndim is not None:
        return [images_or_paths]
    if isinstance(images_or_paths, (list, tuple)):
        return [os.fspath(x) if _is_path(x) else x for x in images_or_paths]
    raise UsageError(f"expected an image array, a path, or a list of them, got {type(images_or_paths).__name__}")


def fit(
    images_or_paths: Union["ImageOrPath", Sequence["ImageOrPath"]],
    *,
    device: str = "cpu",
    threads: Optional[int] = None,
    **params: Any,
) -> Model:
    """A target model from reference images (arrays or files; whole slides are sampled),
    pooling their tissue pixels: ``vahanorm fit --ref A [--ref B ...]``.

    ``params``: estimation parameters by their model-file names (``seed``, ``sample_size``,
    ``lambda_``, ``lambda_concentration``, ``percentile``, ...). DataError when there is too
    little tissue or the stains come out nearly parallel.
    """
    text = _core.estimate(_sources(images_or_paths), _params_json(params), _device(device), _threads(threads), True)
    return Model._from_checked(text)


def estimate(
    image_or_path: "ImageOrPath", *, device: str = "cpu", threads: Optional[int] = None, **params: Any
) -> Model:
    """The stain model of one image or slide: ``vahanorm estimate INPUT``."""
    if not _is_path(image_or_path) and getattr(image_or_path, "ndim", None) != 3:
        src: List[Any] = [image_or_path]  # the core says what is wrong with it
    else:
        src = _sources(image_or_path)
    text = _core.estimate(src, _params_json(params), _device(device), _threads(threads), False)
    return Model._from_checked(text)


def _as_model(x: Any, role: str, device: str, threads: Optional[int]) -> Model:
    if isinstance(x, Model):
        return x
    if _is_path(x):
        p = os.fspath(x)
        if p.lower().endswith(".json"):
            return Model.load(p)
        return fit(p, device=device, threads=threads) if role == "target" else estimate(p, device=device, threads=threads)
    if getattr(x, "ndim", None) is not None:
        return fit(x, device=device, threads=threads) if role == "target" else estimate(x, device=device, threads=threads)
    raise UsageError(f"{role}: expected a Model, an image array or a path, got {type(x).__name__}")


class Normalizer:
    """Normalizes H&E images to a target's stains, in memory, on the compiled core of the CLI.

    ``target``: a Model, a model file (.json), a reference image array or file (fitted as by
    ``fit``), or None for the built-in reference. ``source``: None to estimate every image's
    own stains (the CLI's default for tiles), or a fixed source model (Model, .json, image).
    ``device``: "cpu", "cuda", "cuda:N", "auto". ``threads``: the CPU backend's threads
    (None: $SLURM_CPUS_PER_TASK, else all cores), started on first use, per Normalizer.
    ``params``: estimation parameters for the per-image estimates.

    Outputs are uint8 (H, W, 3) arrays, byte-identical to ``vahanorm apply`` on the same
    pixels, for any thread count. An image without a usable estimate (blank, mostly glass)
    comes back unchanged with a BlankTileWarning. Safe to use from several threads (calls on
    one Normalizer take turns; use one per thread to run in parallel) and after fork.
    """

    def __init__(
        self,
        target: Union[Model, "ImageOrPath", None] = None,
        source: Union[Model, "ImageOrPath", None] = None,
        device: str = "cpu",
        threads: Optional[int] = None,
        **params: Any,
    ) -> None:
        self._device = _device(device)
        self._threads = threads
        self._params = dict(params)
        self.target: Model = Model.builtin() if target is None else _as_model(target, "target", device, threads)
        self.source: Optional[Model] = None if source is None else _as_model(source, "source", device, threads)
        self._impl = _core.Normalizer(
            self.target.to_json(),
            None if self.source is None else self.source.to_json(),
            self._device,
            _threads(threads),
            _params_json(self._params),
        )

    @property
    def device(self) -> str:
        """The device asked for."""
        return self._device

    @property
    def backend(self) -> str:
        """The backend in use, e.g. "cpu (2 threads)" (starts it)."""
        return str(self._impl.backend)

    def transform(self, image: "Image") -> "Image":
        """One (H, W, 3) or (H, W, 4) uint8 image (RGBA composited onto white, as the CLI's
        readers do) -> a new (H, W, 3) uint8 array. Any strides; the input is never changed."""
        out, reason = self._impl.transform(image)
        if reason:
            warnings.warn(f"passed through unchanged: {reason}", BlankTileWarning, stacklevel=2)
        return out

    __call__ = transform

    def transform_batch(self, batch: "Image") -> "Image":
        """(N, H, W, 3|4) uint8 -> a new (N, H, W, 3) uint8 array, every tile as ``transform``
        would give it, in one call of the backend (tiles spread over the threads)."""
        out, reasons = self._impl.transform_batch(batch)
        for i, reason in enumerate(reasons):
            if reason:
                warnings.warn(f"tile {i}: passed through unchanged: {reason}", BlankTileWarning, stacklevel=2)
        return out

    def __reduce__(self) -> Any:
        return (_make_normalizer, (self.target, self.source, self._device, self._threads, self._params))

    def __repr__(self) -> str:
        mode = "per-image estimates" if self.source is None else "fixed source"
        return f"Normalizer(target={self.target!r}, {mode}, device={self._device!r})"


def _make_normalizer(target: Model, source: Optional[Model], device: str, threads: Optional[int], params: Dict[str, Any]) -> Normalizer:
    return Normalizer(target, source, device, threads, **params)


def _target_json(target: Any, device: str, threads: Optional[int]) -> str:
    return (Model.builtin() if target is None else _as_model(target, "target", device, threads)).to_json()


def apply_slide(
    input: PathLike,
    output: PathLike,
    target: Union[Model, "ImageOrPath", None] = None,
    source: Union[Model, PathLike, None] = None,
    *,
    format: Optional[str] = None,
    compression: str = "jpeg",
    quality: int = 90,
    tile_size: int = 256,
    bigtiff: bool = False,
    keep_associated: bool = False,
    continue_on_failed_estimate: bool = False,
    skip_existing: bool = False,
    qc_dir: Optional[PathLike] = None,
    device: str = "cpu",
    threads: Optional[int] = None,
    seed: Optional[int] = None,
    sample_size: Optional[int] = None,
) -> Dict[str, Any]:
    """One whole slide into a pyramidal TIFF by the CLI's own code for it (``vahanorm apply
    SLIDE -o OUT``: the slide's model from tissue sampled over it, or ``source``; then the
    streaming pipeline). Returns the slide's report record (docs/cli.md) as a dict; a failure
    raises the error class of its kind, and the record's warnings are issued as warnings.
    ``format``: svs, tiff or ome (None: ome for an output named *.ome.tif, else svs)."""
    import json

    from ._errors import _BY_EXIT_CODE

    params = {k: v for k, v in (("seed", seed), ("sample_size", sample_size)) if v is not None}
    options: Dict[str, Any] = {
        "compression": compression,
        "quality": quality,
        "tile_size": tile_size,
        "bigtiff": bigtiff,
        "keep_associated": keep_associated,
        "continue_on_failed_estimate": continue_on_failed_estimate,
        "skip_existing": skip_existing,
        "params": json.loads(_params_json(params)),
    }
    if format is not None:
        options["format"] = format
    if qc_dir is not None:
        options["qc_dir"] = os.fspath(qc_dir)
    src = None if source is None else _as_model(source, "source", device, threads).to_json()
    text = _core.apply_slide(
        os.fspath(input), os.fspath(output), _target_json(target, device, threads), src, json.dumps(options),
        _device(device), _threads(threads),
    )
    record: Dict[str, Any] = json.loads(text)
    if record.get("status") == "failed":
        raise _BY_EXIT_CODE.get(record.get("exit_code", 70), _BY_EXIT_CODE[70])(record.get("message", ""))
    for w in record.get("warnings", []):
        warnings.warn(f"{record['input']}: {w}", UserWarning, stacklevel=2)
    return record


def apply_tiles(
    inputs: Sequence[PathLike],
    output_dir: PathLike,
    target: Union[Model, "ImageOrPath", None] = None,
    source: Union[Model, PathLike, None] = None,
    *,
    out_format: Optional[str] = None,
    quality: int = 90,
    device: str = "cpu",
    threads: Optional[int] = None,
    **params: Any,
) -> List[Dict[str, Any]]:
    """Tile files (PNG, JPEG, TIFF) into ``output_dir`` (created), as ``vahanorm apply TILES...
    -o DIR/``: the same names, codecs and results; one report record per input. A failed input
    is recorded (status "failed", message, exit_code) and the others go on; a blank tile is
    passed through (status "passed-through") with a BlankTileWarning."""
    import json

    if _is_path(inputs):
        inputs = [inputs]  # type: ignore[list-item]
    out = os.fspath(output_dir)
    os.makedirs(out, exist_ok=True)
    options: Dict[str, Any] = {"quality": quality, "params": json.loads(_params_json(params))}
    if out_format is not None:
        options["out_format"] = out_format
    src = None if source is None else _as_model(source, "source", device, threads).to_json()
    text = _core.apply_tiles(
        [os.fspath(p) for p in inputs], out, _target_json(target, device, threads), src, json.dumps(options),
        _device(device), _threads(threads),
    )
    records: List[Dict[str, Any]] = json.loads(text)
    for r in records:
        if r.get("status") == "passed-through":
            warnings.warn(f"{r['input']}: passed through unchanged: {r.get('message', '')}", BlankTileWarning, stacklevel=2)
    return records


def read_image(path: PathLike) -> "Image":
    """A PNG, JPEG or TIFF file as an (H, W, 3) uint8 array, decoded by the CLI's readers
    (alpha composited onto white, gray expanded, 16-bit reduced)."""
    img, _conversion = _core.read_image(os.fspath(path))
    return img


def write_image(path: PathLike, image: "Image", quality: int = 90) -> None:
    """Writes an (H, W, 3|4) uint8 array as PNG, JPEG or TIFF (by extension), atomically."""
    _core.write_image(os.fspath(path), image, quality)


