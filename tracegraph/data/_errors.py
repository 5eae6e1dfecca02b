"""The errors of `tg.data`: every problem with a data set is a `DataError` (a `tg.Error`)."""

from __future__ import annotations

from ..errors import Error


class DataError(Error):
    """A data set cannot be loaded or used: a missing optional package, a missing file,
    bad arguments to a loader or to `batches`."""


class IDXError(DataError):
    """An IDX (MNIST-format) file is malformed: bad magic number, unsupported dtype code,
    truncated or oversized payload, or images and labels that do not match."""
