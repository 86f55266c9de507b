"""The shapes every node in the tree shares, so the server can serve any of them alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np


class Node:
    """A node at ``path``: a container, a table or an array, with metadata."""

    structure_family: ClassVar[str]
    specs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: tuple[str, ...]) -> None:
        self.path = path

    @property
    def metadata(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} /{'/'.join(self.path)}>"


class Container(Node, Mapping):
    """A read-only mapping of names to child nodes, with paged listing for large containers."""

    structure_family = "container"

    def keys_range(self, offset: int = 0, limit: int | None = None) -> list[str]:
        keys = list(self)
        return keys[offset : None if limit is None else offset + limit]

    def items_range(self, offset: int = 0, limit: int | None = None) -> list[tuple[str, Node]]:
        return [(k, self[k]) for k in self.keys_range(offset, limit)]

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError

    def __len__(self) -> int:
        return sum(1 for _ in self)


class ArrayNode(Node):
    """An n-dimensional array read lazily: ``read(index)`` fetches only what ``index`` selects."""

    structure_family = "array"

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        raise NotImplementedError

    @property
    def dims(self) -> tuple[str, ...]:
        return ("time", *(f"dim_{i}" for i in range(1, len(self.shape))))

    def info(self) -> tuple[tuple[int, ...], np.dtype, tuple[str, ...]]:
        """(shape, dtype, dims) together; subclasses compute them with fewer queries."""
        return self.shape, self.dtype, self.dims

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) along the first dimension."""
        raise NotImplementedError

    def read(self, index: Any = ()) -> np.ndarray:
        """Read ``self[index]`` touching only the rows that ``index`` selects."""
        index = index if isinstance(index, tuple) else (index,)
        n = self.shape[0] if self.shape else 0
        first = index[0] if index else slice(None)
        if isinstance(first, int | np.integer):
            i = int(first) + n if first < 0 else int(first)
            if not 0 <= i < n:
                raise IndexError(f"index {int(first)} is out of bounds for {n} rows")
            return self.read_rows(i, i + 1)[(0, *index[1:])]
        if isinstance(first, slice):
            rows = range(*first.indices(n))
            if len(rows) == 0:
                return self.read_rows(0, 0)[(slice(None), *index[1:])]
            lo, hi = min(rows[0], rows[-1]), max(rows[0], rows[-1]) + 1
            block = self.read_rows(lo, hi)
            local = slice(
                rows.start - lo, None if rows.stop - lo < 0 else rows.stop - lo, rows.step
            )
            return block[(local, *index[1:])]
        if first is Ellipsis:
            return self.read_rows(0, n)[index]
        raise TypeError(f"unsupported index {index!r}; use integers and slices")

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.read(index)


class TableNode(Node):
    """A table whose columns are also reachable as array nodes (``table[column]``)."""

    structure_family = "table"
    # Whether read(fill=False) can give external fields as their stored references (datum
    # ids) instead of the detector data; only event tables have references.
    fillable = False

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def keys(self) -> list[str]:
        return self.columns

    def read(self, columns: list[str] | None = None) -> Any:
        """The table (or the named columns) as a pandas DataFrame."""
        raise NotImplementedError

    def read_arrays(self, columns: list[str] | None = None) -> dict[str, np.ndarray]:
        """The index first, then each column, as numpy arrays."""
        from .columns import to_array

        df = self.read(columns)
        return {
            df.index.name or "index": df.index.to_numpy(),
            **{str(c): to_array(df[c].tolist()) for c in df.columns},
        }

    def __getitem__(self, column: str) -> ArrayNode:
        raise NotImplementedError
