"""Tables of a stream (``data``, ``timestamps``, ``config/<object>``) and their column arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import columns as col
from .errors import NotFound
from .node import ArrayNode, TableNode
from .reads import column_layout, column_layouts, read_column, read_columns

if TYPE_CHECKING:
    from .run import Stream

NUMPY_OF_JSON_TYPE = {"number": "float64", "integer": "int64", "boolean": "bool", "string": "O"}


def is_external(data_key: dict) -> bool:
    return bool(data_key.get("external"))


def declared_dtype(data_key: dict) -> np.dtype:
    """The numpy dtype a descriptor promises for a field (dtype_numpy when given)."""
    if data_key.get("dtype_numpy"):
        try:
            return np.dtype(data_key["dtype_numpy"])
        except TypeError:
            pass
    return np.dtype(NUMPY_OF_JSON_TYPE.get(data_key.get("dtype"), "float64"))


def declared_shape(data_key: dict) -> tuple[int, ...]:
    """The per-event shape a descriptor promises; 0 stands for a dimension it leaves open
    (``None`` or negative in the document)."""
    return tuple(
        int(n) if n is not None and int(n) >= 0 else 0 for n in data_key.get("shape") or ()
    )


class EventTable(TableNode):
    """``data`` or ``timestamps`` of a stream: index seq_num, a ``time`` column, one per field.

    External fields (detector files) are columns too, but ``read()`` without ``columns`` leaves
    them out: they are read, lazily and slice by slice, as array nodes (``table[field]``) or by
    naming them in ``columns``.
    """

    def __init__(self, stream: Stream, kind: str) -> None:
        super().__init__((*stream.path, kind))
        self.stream = stream
        self.kind = kind

    @property
    def metadata(self) -> dict[str, Any]:
        return {"data_keys": self.stream.data_keys} if self.kind == "data" else {}

    @property
    def columns(self) -> list[str]:
        return ["time", *self.stream.data_keys]

    @property
    def internal_columns(self) -> list[str]:
        return ["time", *(k for k, v in self.stream.data_keys.items() if not is_external(v))]

    def __len__(self) -> int:
        return self.stream.num_rows()

    def column_infos(self, rows: int | None = None) -> dict[str, tuple[ArrayNode, tuple]]:
        """Every column's node and (shape, dtype, dims), in two queries (one when ``rows`` is
        known), for listings."""
        nodes = {name: self[name] for name in self.columns}
        stored = [n.stored for n in nodes.values() if isinstance(n, StoredArray)]
        rows = len(self) if rows is None else rows
        with self.stream.root.connect() as conn:
            layouts = column_layouts(conn, self.stream.id, stored)
        out = {}
        for name, node in nodes.items():
            if isinstance(node, StoredArray):
                dtype, row_shape = layouts.get(node.stored) or (
                    declared_dtype(node.data_key),
                    declared_shape(node.data_key),
                )
                shape = (rows, *row_shape)
                out[name] = (node, (shape, dtype, node._dims(len(shape))))
            else:
                out[name] = (node, node.info())
        return out

    def _stored_name(self, column: str) -> str:
        return "time" if column == "time" else f"{self.kind}/{column}"

    def __getitem__(self, column: str) -> ArrayNode:
        data_keys = self.stream.data_keys
        if column != "time" and column not in data_keys:
            raise NotFound(
                f"stream {self.stream.name!r} has no field {column!r}; fields: {list(data_keys)}"
            )
        path = (*self.path, column)
        if self.kind == "data" and column != "time" and is_external(data_keys[column]):
            return self._external_array(path, column, data_keys[column])
        data_key = data_keys.get(column, {"dtype": "number", "shape": []})
        return self._stored_array(path, column, data_key)

    def _external_array(self, path: tuple[str, ...], column: str, data_key: dict) -> ArrayNode:
        """A detector-file field: a source of other storage (catalog/mongo) overrides it."""
        from .external import ExternalArray

        return ExternalArray(self.stream, path, column, data_key)

    def _stored_array(self, path: tuple[str, ...], column: str, data_key: dict) -> ArrayNode:
        """A field whose values are in the events (column chunks here)."""
        return StoredArray(self.stream, path, self._stored_name(column), data_key)

    fillable = True

    def read(self, columns: list[str] | None = None, fill: bool = True) -> pd.DataFrame:
        arrays = self.read_arrays(columns, fill)
        seq = arrays.pop("seq_num")
        data = {k: list(v) if v.ndim > 1 else v for k, v in arrays.items()}
        return pd.DataFrame(data, index=pd.Index(seq, name="seq_num"), columns=list(data))

    def read_arrays(
        self,
        columns: list[str] | None = None,
        fill: bool = True,
        start: int = 0,
        stop: int | None = None,
        preread: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """``seq_num`` and then each column as one numpy array, without building pandas
        objects (the server turns these straight into Arrow). With ``fill=False`` external
        fields are their events' datum ids (None for stream_datum fields, whose events carry
        no value), as legacy Databroker's unfilled tables showed them. ``start``/``stop``
        select rows (live updates send only the rows just appended); ``preread`` may hold
        those rows' stored columns as the writer's notice carried them, which saves the read
        when it has every column asked for."""
        names = self.internal_columns if columns is None else list(columns)
        stop = len(self) if stop is None else stop
        n = max(stop - start, 0)
        nodes = {name: self[name] for name in names}
        if not fill:  # external fields as stored: datum ids, or None where events had none
            reference = {"dtype": "string", "shape": []}
            for name, node in nodes.items():
                if not isinstance(node, StoredArray):
                    nodes[name] = StoredArray(self.stream, node.path, f"data/{name}", reference)
        stored = {
            node.stored: name for name, node in nodes.items() if isinstance(node, StoredArray)
        }
        wanted = ["seq_num", *stored]
        if preread is not None and all(c in preread for c in wanted):
            found = {c: preread[c] for c in wanted}
        else:
            with self.stream.root.connect() as conn:
                found = read_columns(conn, self.stream.id, wanted, start, stop)
        seq = found.get("seq_num")
        if seq is None:
            seq = np.arange(start + 1, start + n + 1)
        data: dict[str, np.ndarray] = {"seq_num": seq}
        for name, node in nodes.items():
            if isinstance(node, StoredArray):
                data[name] = found[node.stored] if node.stored in found else node.missing(n)
            else:  # external: read from its files
                data[name] = node.read_rows(start, stop)
        return data


class StoredArray(ArrayNode):
    """A column kept in the catalog's chunks (numbers, strings, small inline arrays)."""

    def __init__(self, stream: Stream, path: tuple[str, ...], stored: str, data_key: dict) -> None:
        super().__init__(path)
        self.stream = stream
        self.stored = stored
        self.data_key = data_key

    @property
    def metadata(self) -> dict[str, Any]:
        return {"data_key": self.data_key}

    def _layout(self) -> tuple[np.dtype, tuple]:
        with self.stream.root.connect() as conn:
            layout = column_layout(conn, self.stream.id, self.stored)
        if layout is None:
            return declared_dtype(self.data_key), declared_shape(self.data_key)
        return layout

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stream.num_rows(), *self._layout()[1])

    @property
    def dtype(self) -> np.dtype:
        return self._layout()[0]

    @property
    def dims(self) -> tuple[str, ...]:
        return self._dims(len(self._layout()[1]) + 1)

    def _dims(self, ndim: int) -> tuple[str, ...]:
        own = self.data_key.get("dims") or [f"dim_{i}" for i in range(1, ndim)]
        return ("time", *own)

    def info(self) -> tuple[tuple[int, ...], np.dtype, tuple[str, ...]]:
        dtype, row_shape = self._layout()
        shape = (self.stream.num_rows(), *row_shape)
        return shape, dtype, self._dims(len(shape))

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        with self.stream.root.connect() as conn:
            arr = read_column(conn, self.stream.id, self.stored, start, stop)
        return self.missing(stop - start) if arr is None else arr

    def missing(self, rows: int) -> np.ndarray:
        """What a field that no event carried reads as: NaN for numbers, else None."""
        dtype = declared_dtype(self.data_key)
        shape = declared_shape(self.data_key)
        if 0 in shape or dtype.kind not in "fc":
            return np.full(rows, None, dtype=object)
        return np.full((rows, *shape), np.nan, dtype=dtype)


class ConfigTable(TableNode):
    """One object's configuration readings, one row per descriptor of the stream."""

    def __init__(self, stream: Stream, obj: str) -> None:
        super().__init__((*stream.path, "config", obj))
        self.stream = stream
        self.obj = obj

    def _configs(self) -> list[dict]:
        return [d.get("configuration", {}).get(self.obj, {}) for d in self.stream.descriptors]

    @property
    def metadata(self) -> dict[str, Any]:
        keys: dict[str, dict] = {}
        for c in self._configs():
            keys.update(c.get("data_keys", {}))
        return {"data_keys": keys}

    @property
    def columns(self) -> list[str]:
        names: dict[str, None] = {}
        for c in self._configs():
            names.update(dict.fromkeys(c.get("data", {})))
        return list(names)

    def __len__(self) -> int:
        return len(self.stream.descriptors)

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        names = self.columns if columns is None else list(columns)
        rows = [{k: c.get("data", {}).get(k) for k in names} for c in self._configs()]
        return pd.DataFrame(rows, columns=names)

    def __getitem__(self, column: str) -> ArrayNode:
        if column not in self.columns:
            raise NotFound(f"configuration of {self.obj!r} has no {column!r}")
        return ConfigArray(self, column)


class ConfigArray(ArrayNode):
    """One configuration reading across descriptors."""

    def __init__(self, table: ConfigTable, column: str) -> None:
        super().__init__((*table.path, column))
        self.values = col.to_array(table.read([column])[column].tolist())

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return self.values[start:stop]
