"""HDF5 string datasets as Tiled's own client is given them: fixed-length bytes.

Our client and the web page read a string dataset as text (an object array, sent as JSON).
Tiled's client (0.2) refuses object arrays outright, and ``tiled serve directory`` does not
send it any: it serves a variable-length string dataset as fixed-length bytes, ``S<n>`` with
``n`` the longest value's length in bytes (read whole to find it), each value's bytes as
stored (UTF-8 or ASCII), and a fixed-length one with its own dtype. The same is given here,
to Tiled's client only (``FileArray.as_seen_by_tiled``, used by server/tiled_frames.py), so
code written against a Tiled server reads the same values from this one.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from bluebroker.catalog import ArrayNode
from bluebroker.structures import block_chunks

from .hdf5_handles import OPEN_FILES
from .readers import normalize_index
from .readers_hdf5 import check_links, h5py_string


@functools.lru_cache(maxsize=256)
def _bytes_dtype(path: str, inner: str, mtime_ns: int, size: int) -> np.dtype | None:
    """``S<n>`` of a string dataset, None for any other (cached while the file is unchanged:
    finding the longest variable-length value reads them all, as Tiled does)."""
    try:
        with OPEN_FILES.dataset(path, inner, check_links) as ds:
            if not h5py_string(ds.dtype):
                return None
            if ds.dtype.kind == "S":
                return ds.dtype
            values = np.asarray(ds[()], dtype=bytes)  # h5py gives vlen strings as bytes
            return np.dtype(f"S{max(values.dtype.itemsize, 1)}")
    except KeyError:  # no longer a dataset (the file changed): its read will say so
        return None


class TiledStrings(ArrayNode):
    """A served HDF5 string dataset as fixed-length bytes (``S<n>``), values as stored."""

    def __init__(self, node: Any, path: str, dtype: np.dtype) -> None:
        super().__init__(node.path)
        self.node, self.file, self._dtype = node, path, dtype

    @property
    def metadata(self) -> dict[str, Any]:
        return self.node.metadata

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def dims(self) -> tuple[str, ...]:
        return self.node.dims

    def tiled_structure(self) -> dict[str, Any]:
        """Kind ``S`` with its itemsize, as Tiled says it (our structures say strings are
        JSON values, kind ``O``)."""
        n = self._dtype.itemsize
        return {
            "data_type": {"endianness": "not_applicable", "kind": "S", "itemsize": n},
            "shape": list(self.shape),
            "dims": list(self.dims),
            "chunks": block_chunks(self.shape, n),
        }

    def read(self, index: Any = ()) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        with OPEN_FILES.dataset(self.file, self.node.row.inner, check_links) as ds:
            if ds.shape == ():
                if index not in ((), (Ellipsis,)):
                    raise IndexError("this dataset is a scalar; read it without a slice")
                return np.asarray(ds[()], dtype=self._dtype)
            read, after = normalize_index(index, ds.shape)
            block = np.asarray(ds[read], dtype=self._dtype)
        return block[after] if after else block

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return self.read((slice(start, stop),))


def as_seen_by_tiled(node: Any) -> Any:
    """``node`` (a served file's array) as Tiled's client is to see it."""
    if node.row.reader != "hdf5" or node.dtype.kind != "O":
        return node
    path = node.source._files(node.row)[0]
    stat = os.stat(path)
    dtype = _bytes_dtype(path, node.row.inner, stat.st_mtime_ns, stat.st_size)
    return node if dtype is None else TiledStrings(node, path, dtype)
