"""Structure descriptions sent with every node: what an array, table or container looks like,
so a client can plan a read (shape, dtype, blocks) before fetching any data.

The JSON follows Tiled's vocabulary (``data_type`` with endianness/kind/itemsize, ``chunks``
per dimension) so Tiled users recognise it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK_BYTES = 16 * 2**20  # target size of one array block along the first dimension
_ENDIAN = {"<": "little", ">": "big", "|": "not_applicable", "=": "little"}
_SYMBOL = {v: k for k, v in _ENDIAN.items() if k != "="}


@dataclass(frozen=True)
class DataType:
    endianness: str
    kind: str
    itemsize: int

    @classmethod
    def from_numpy(cls, dtype: np.dtype) -> DataType:
        dtype = np.dtype(dtype)
        if dtype.kind in "OUS":  # served as JSON values, never as raw bytes
            return cls("not_applicable", "O", 0)
        # The order of the bytes the server sends, not of the file they came from: encoders
        # send native order (a big-endian HDF5 dataset goes out little-endian on x86), and a
        # client decoding raw bytes by this structure must not byte-swap them again.
        order = ("<" if sys.byteorder == "little" else ">") if dtype.itemsize > 1 else "|"
        return cls(_ENDIAN[order], dtype.kind, dtype.itemsize)

    def to_numpy(self) -> np.dtype:
        if self.kind == "O":
            return np.dtype(object)
        return np.dtype(f"{_SYMBOL[self.endianness]}{self.kind}{self.itemsize}")


def block_chunks(shape: tuple[int, ...], itemsize: int) -> list[list[int]]:
    """Blocks of whole rows along the first dimension, about BLOCK_BYTES each."""
    if not shape:
        return []
    row = max(1, itemsize) * math.prod(shape[1:])
    per_block = max(1, BLOCK_BYTES // max(1, row))
    n = shape[0]
    first = [per_block] * (n // per_block) + ([n % per_block] if n % per_block else [])
    return [first or [0], *[[d] for d in shape[1:]]]


@dataclass(frozen=True)
class ArrayStructure:
    data_type: DataType
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    chunks: list[list[int]] = field(default_factory=list)

    @classmethod
    def from_array_info(
        cls, shape: tuple[int, ...], dtype: np.dtype, dims: tuple[str, ...]
    ) -> ArrayStructure:
        data_type = DataType.from_numpy(dtype)
        return cls(data_type, tuple(shape), tuple(dims), block_chunks(shape, data_type.itemsize))

    @property
    def dtype(self) -> np.dtype:
        return self.data_type.to_numpy()

    def to_json(self) -> dict[str, Any]:
        t = self.data_type
        return {
            "data_type": {"endianness": t.endianness, "kind": t.kind, "itemsize": t.itemsize},
            "shape": list(self.shape),
            "dims": list(self.dims),
            "chunks": self.chunks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArrayStructure:
        return cls(
            DataType(**data["data_type"]),
            tuple(data["shape"]),
            tuple(data["dims"]),
            data.get("chunks", []),
        )


@dataclass(frozen=True)
class TableStructure:
    columns: list[str]
    num_rows: int
    npartitions: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "num_rows": self.num_rows, "npartitions": self.npartitions}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableStructure:
        return cls(list(data["columns"]), int(data["num_rows"]), int(data.get("npartitions", 1)))


@dataclass(frozen=True)
class ContainerStructure:
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "contents": None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerStructure:
        return cls(int(data["count"]))
