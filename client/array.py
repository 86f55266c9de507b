"""Array nodes: ``node[...]`` fetches exactly the slice asked for, as raw bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from bluebroker.slicing import format_index, result_shape
from bluebroker.structures import ArrayStructure

from .base import BaseClient


class ArrayClient(BaseClient):
    @property
    def structure(self) -> ArrayStructure:
        return ArrayStructure.from_json(self._item["attributes"]["structure"])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.structure.shape

    @property
    def dtype(self) -> np.dtype:
        return self.structure.dtype

    @property
    def dims(self) -> tuple[str, ...]:
        return self.structure.dims

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.read(index)

    def read(self, index: Any = ()) -> np.ndarray:
        """The array, or ``array[index]``, fetching only that part."""
        index = index if isinstance(index, tuple) else (index,)
        text = format_index(index)
        params = {"slice": text} if text else {}
        structure = self.structure
        if structure.data_type.kind == "O":
            response = self._transport.get_bytes(
                "array/full", self.path, params, accept="application/json"
            )
            return np.asarray(response.json(), dtype=object)
        response = self._transport.get_raw("array/full", self.path, params)
        # The server says what it sent: the array may have grown since its metadata was read.
        dtype = np.dtype(response.headers.get("x-array-dtype", structure.dtype.str))
        text = response.headers.get("x-array-shape")
        shape = (
            tuple(int(n) for n in text.split(",") if n)
            if text is not None
            else result_shape(structure.shape, index)
        )
        # A view of the received buffer, no copy (writable when it came by http.client).
        return np.frombuffer(response.content, dtype=dtype).reshape(shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.read()
        return arr if dtype is None else arr.astype(dtype)

    def asset_locations(self) -> list[dict[str, Any]]:
        """Files holding this (external) array: ``[{'path', 'data_uri', 'mimetype', ...}]``;
        empty for data kept in the catalog."""
        if "data_sources" not in self._item["attributes"]:  # listed in a parent: ask for them
            self.refresh()
        sources = self._item["attributes"].get("data_sources") or []
        return [
            {**asset, "mimetype": s.get("mimetype"), "parameters": s.get("parameters", {})}
            for s in sources
            for asset in s.get("assets", [])
        ]

    def __repr__(self) -> str:
        return f"<ArrayClient shape={self.shape} dtype={self.dtype}>"
