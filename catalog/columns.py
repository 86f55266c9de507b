"""Column chunks: how a batch of event values becomes one blob, and back.

Fixed-size dtypes (numbers, booleans) are stored as raw little-endian bytes, so a slice of
rows is a byte range that SQL can cut out without reading the rest of the chunk. Strings and
ragged values are stored as msgpack lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bluebroker import packing

OBJECT = "object"
# A chunk's tier is the order of magnitude (base FANOUT) of its row count. When FANOUT chunks of
# one tier sit at the end of a column they are merged into one, so a stream appended one event
# at a time keeps O(FANOUT * log(rows)) chunks and each row is rewritten O(log(rows)) times.
FANOUT = 16
MAX_MERGED_BYTES = 32 * 2**20
OBJECT_KINDS = "OUSV"


@dataclass(frozen=True)
class Chunk:
    """A decoded run of rows of one column: ``values`` has shape (rows, *row_shape)."""

    start_row: int
    values: np.ndarray

    @property
    def stop_row(self) -> int:
        return self.start_row + len(self.values)


def tier_of(rows: int) -> int:
    return int(math.log(max(rows, 1), FANOUT))


def to_array(values: Sequence[Any], dtype_numpy: str | None = None) -> np.ndarray:
    """Stack per-event values into one array, keeping numeric dtypes and per-row shapes."""
    if dtype_numpy:
        try:
            arr = np.asarray(values, dtype=np.dtype(dtype_numpy))
            if arr.dtype.kind not in "OUS":
                return arr
        except (TypeError, ValueError, OverflowError):
            pass
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError):  # ragged, or integers too large for int64
        arr = None
    if arr is None or arr.dtype.kind in "OUSV":
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            out[i] = v
        return out
    return arr


def encode(arr: np.ndarray) -> tuple[str, list[int], bytes]:
    """Return (dtype string, per-row shape, payload) for a column array."""
    if arr.dtype.kind in OBJECT_KINDS:
        items = list(arr) if arr.dtype.kind == "O" and arr.ndim == 1 else arr.tolist()
        try:
            return OBJECT, [], packing.packb(items)
        except OverflowError:  # integers beyond 64 bits: kept as their decimal text
            items = [str(v) if isinstance(v, int) else v for v in items]
            return OBJECT, [], packing.packb(items)
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return little.dtype.str, list(arr.shape[1:]), np.ascontiguousarray(little).tobytes()


def decode(dtype: str, shape: Sequence[int], payload: bytes, rows: int) -> np.ndarray:
    """Inverse of :func:`encode`; ``rows`` is how many rows the payload holds."""
    if dtype == OBJECT:
        items = packing.unpackb(payload)
        out = np.empty(len(items), dtype=object)
        for i, v in enumerate(items):
            out[i] = v
        return out
    return np.frombuffer(payload, dtype=np.dtype(dtype)).reshape((rows, *shape))


def row_nbytes(dtype: str, shape: Sequence[int]) -> int | None:
    """Bytes per row for fixed-size dtypes; None when rows have no fixed size."""
    if dtype == OBJECT:
        return None
    return np.dtype(dtype).itemsize * math.prod(shape)


def fill_value(dtype: np.dtype) -> Any:
    """What stands in a column for rows whose descriptor did not have that field."""
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind in "mM":
        return np.datetime64("NaT")
    return None


def assemble(chunks: list[Chunk], start: int, stop: int) -> np.ndarray:
    """Concatenate chunks covering rows [start, stop); rows no chunk covers read as missing
    (NaN for floats, None otherwise). Chunks whose rows differ in shape, or mix numbers with
    objects, come back as one object array with a row per element."""
    if not chunks:
        return np.full(stop - start, None, dtype=object)
    covered = sum(max(0, min(c.stop_row, stop) - max(c.start_row, start)) for c in chunks)
    if covered == stop - start and len(chunks) == 1:
        c = chunks[0]
        return c.values[start - c.start_row : stop - c.start_row]
    shapes = {c.values.shape[1:] for c in chunks}
    kinds = {c.values.dtype.kind in "OUSV" for c in chunks}
    if len(shapes) > 1 or len(kinds) > 1:
        out = np.full(stop - start, None, dtype=object)
        for c in chunks:
            lo, hi = max(c.start_row, start), min(c.stop_row, stop)
            for i in range(lo, hi):
                out[i - start] = c.values[i - c.start_row]
        return out
    dtype = np.result_type(*[c.values.dtype for c in chunks])
    row_shape = shapes.pop()
    if covered != stop - start:
        if dtype.kind not in "fcmMO":
            dtype = np.result_type(dtype, np.float64) if dtype.kind in "iu" else np.dtype(object)
        out = np.full((stop - start, *row_shape), fill_value(dtype), dtype=dtype)
    else:
        # zeros, not empty: overlapping chunks can add up to the count and still leave a gap
        out = np.zeros((stop - start, *row_shape), dtype=dtype)
    for c in chunks:
        lo, hi = max(c.start_row, start), min(c.stop_row, stop)
        if hi > lo:
            out[lo - start : hi - start] = c.values[lo - c.start_row : hi - c.start_row]
    return out
