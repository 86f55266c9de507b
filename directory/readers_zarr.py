"""Zarr stores (folders named ``*.zarr``): groups as containers, arrays as arrays, attributes
as metadata. Used only where the ``zarr`` package is installed."""

from __future__ import annotations

from typing import Any

import numpy as np

from bluebroker.catalog.engine import jsonable

from .readers import Entry, Reader, normalize_index

MAX_NODES = 10_000


def _array_structure(arr: Any) -> dict[str, Any]:
    return {
        "shape": list(arr.shape),
        "dtype": np.dtype(arr.dtype).str,
        "dims": [f"dim_{i}" for i in range(len(arr.shape))],
        "chunks": list(arr.chunks),
    }


class ZarrReader(Reader):
    name = "zarr"
    suffixes = (".zarr",)
    folders = True

    @staticmethod
    def available() -> bool:
        try:
            import zarr  # noqa: F401
        except ImportError:
            return False
        return True

    def describe(self, files: list[str]) -> list[Entry]:
        import zarr

        node = zarr.open(files[0], mode="r")
        meta = jsonable(dict(node.attrs))
        if isinstance(node, zarr.Array):
            return [Entry("array", "zarr-array", _array_structure(node), meta)]
        entries = [Entry("container", "zarr-group", {"count": len(list(node.keys()))}, meta)]
        for name, member in node.members(max_depth=None):
            if len(entries) > MAX_NODES:
                break
            m = jsonable(dict(member.attrs))
            if isinstance(member, zarr.Array):
                entries.append(Entry("array", "zarr-array", _array_structure(member), m, name))
            else:
                count = len(list(member.keys()))
                entries.append(Entry("container", "zarr-group", {"count": count}, m, name))
        return entries

    def read_array(self, files: list[str], inner: str, index: tuple) -> np.ndarray:
        import zarr

        arr = zarr.open_array(files[0], path=inner or None, mode="r")
        read, after = normalize_index(index, tuple(arr.shape))
        block = np.asarray(arr[read])
        return block[after] if after else block
