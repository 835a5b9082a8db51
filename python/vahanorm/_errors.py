"""The exceptions of vahanorm: one class per error kind of the core (core/error.hpp), carrying
the same messages as the command line, whose exit code for each kind is ``exit_code``."""
from __future__ import annotations


class VahanormError(Exception):
    """Base class of every error raised by vahanorm's core."""

    kind = "internal"
    exit_code = 70


class UsageError(VahanormError, ValueError):
    """A wrong argument: unknown option or device, a float image, a wrong shape (CLI exit 64)."""

    kind = "usage"
    exit_code = 64


class InputError(VahanormError, OSError):
    """An input file is missing, unreadable, corrupt or not an image/slide (CLI exit 66)."""

    kind = "input"
    exit_code = 66


class DataError(VahanormError, ValueError):
    """Readable but unusable: no tissue, nearly parallel stains, a bad or NaN model (CLI exit 65)."""

    kind = "data"
    exit_code = 65


class OutputError(VahanormError, OSError):
    """An output cannot be created or written, or is locked by another process (CLI exit 73)."""

    kind = "output"
    exit_code = 73


class DeviceError(VahanormError, RuntimeError):
    """The requested GPU cannot be used (CLI exit 69)."""

    kind = "device"
    exit_code = 69


class StoppedError(VahanormError, RuntimeError):
    """Stopped by a signal (CLI exit 75)."""

    kind = "interrupted"
    exit_code = 75


class InternalError(VahanormError, RuntimeError):
    """A bug in vahanorm: please report it (CLI exit 70)."""

    kind = "internal"
    exit_code = 70


class ResourceError(VahanormError, OSError):
    """The system refused a resource, e.g. a thread (process or thread limit) (CLI exit 71)."""

    kind = "resource"
    exit_code = 71


class BlankTileWarning(UserWarning):
    """A tile without a usable stain estimate (blank, mostly glass) was passed through unchanged."""


# In the order of vn::ErrorKind.
_BY_KIND = (UsageError, InputError, DataError, OutputError, DeviceError, StoppedError, InternalError, ResourceError)
# By the CLI's exit code (report records carry it).
_BY_EXIT_CODE = {cls.exit_code: cls for cls in _BY_KIND}
