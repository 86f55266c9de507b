"""Table nodes: ``read(columns=[...])`` into pandas, over Arrow."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from bluebroker import formats
from bluebroker.structures import TableStructure

from .base import BaseClient

if TYPE_CHECKING:
    import pandas as pd

    from .array import ArrayClient
    from .live_table import LiveTable
    from .transport import Transport


def read_table(
    transport: Transport,
    path: tuple[str, ...],
    columns: list[str] | None = None,
    fill: bool = True,
) -> pd.DataFrame:
    """The table at ``path`` in one request, without fetching its metadata first. What the
    server says about it (``bluebroker.*`` schema metadata) lands in ``df.attrs``."""
    import pyarrow as pa

    params = [("column", c) for c in columns or []]
    if not fill:
        params.append(("fill", "false"))
    response = transport.get_bytes("table/full", path, params, accept=formats.ARROW)
    table = pa.ipc.open_file(io.BytesIO(response.content)).read_all()
    df = table.to_pandas(use_threads=False)
    for name in table.column_names:
        if _is_list(table.schema.field(name).type):
            df[name] = _rows_as_arrays(table.column(name))
    about = {
        k.decode()[len("bluebroker.") :]: v.decode()
        for k, v in (table.schema.metadata or {}).items()
        if k.startswith(b"bluebroker.")
    }
    index = about.pop("index", None)
    df = df.set_index(index) if index else df
    df.attrs.update(about)
    return df


class ColumnsLeftOut(UserWarning):
    """A whole-table read left out columns that ``keys()`` lists (detector-file fields,
    which are read only when named). Silence it with ``warnings.simplefilter('ignore',
    ColumnsLeftOut)``, or name the columns you want."""


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return t.is_fixed_size_list(kind) or t.is_list(kind) or t.is_large_list(kind)


def _rows_as_arrays(column: Any) -> list[Any]:
    """An Arrow list column as one ndarray per row: a 5x64x64 image column gives five (64, 64)
    arrays (Arrow's own conversion gives arrays of arrays of rows)."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    shape, inner, values = [], column.type, column
    while pa.types.is_fixed_size_list(inner):
        shape.append(inner.list_size)
        inner = inner.value_type
    if shape and column.null_count == 0 and not _is_list(inner):
        for _ in shape:
            values = values.flatten()
        flat = values.to_numpy(zero_copy_only=False)
        if flat.dtype != object:
            return list(flat.reshape(len(column), *shape))
    return [None if row is None else _nested(row) for row in column.to_pylist()]


def _nested(row: Any) -> Any:
    """One ragged or nullable row as an ndarray when it is rectangular, else as it came."""
    try:
        arr = np.asarray(row)
    except ValueError:  # ragged: leave the lists as they are
        return row
    return row if arr.dtype == object else arr


class TableClient(BaseClient):
    @property
    def structure(self) -> TableStructure:
        return TableStructure.from_json(self._item["attributes"]["structure"])

    @property
    def columns(self) -> list[str]:
        return self.structure.columns

    def __len__(self) -> int:
        return self.structure.num_rows

    def keys(self) -> list[str]:
        return self.columns

    def __iter__(self) -> Iterator[str]:
        """A table is a mapping of its columns, as a container is of its children."""
        return iter(self.columns)

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def values(self) -> list[ArrayClient]:
        return [self[c] for c in self.columns]

    def items(self) -> list[tuple[str, ArrayClient]]:
        return [(c, self[c]) for c in self.columns]

    def read(self, columns: list[str] | None = None, fill: bool = True) -> pd.DataFrame:
        """The table (index seq_num), or only ``columns``; ``fill=False`` gives every field,
        with external (detector file) fields of a stream's data as their datum ids.

        Columns holding an array per row (waveforms, images) come back as one ndarray per
        row. Detector-file fields are read only when named in ``columns``: a read of the whole
        table leaves them out, lists them in ``df.attrs['left_out']`` and warns
        (:class:`ColumnsLeftOut`) once, saying how to read them."""
        df = read_table(self._transport, self.path, columns, fill)
        if columns is None and fill:
            left_out = [c for c in self.columns if c not in df.columns and c != df.index.name]
            if left_out:
                df.attrs["left_out"] = left_out
                warn_left_out(left_out, "table.read", "table")
        return df

    def live(self) -> LiveTable:
        """A view of this table that grows as rows arrive: ``.read()`` is always current."""
        from .live_table import LiveTable

        return LiveTable(self)

    def __getitem__(self, column: str) -> ArrayClient:
        from .nodes import fetch, make_node

        if not isinstance(column, str):
            raise TypeError(f"columns are named by strings, not {type(column).__name__}")
        contents = self._item["attributes"]["structure"].get("contents") or {}
        if column in contents:  # listed by the server with the table
            return make_node(self._transport, contents[column], (*self.path, column))
        return fetch(self._transport, (*self.path, column))

    def __repr__(self) -> str:
        return f"<TableClient {self.columns} rows={len(self)}>"


def stack_rows(values: np.ndarray) -> np.ndarray:
    """A column of per-row arrays as one n-d array, when every row has the same shape."""
    if values.dtype != object or not len(values):
        return values
    if not all(isinstance(v, np.ndarray) for v in values):
        return values
    try:
        return np.stack(list(values))
    except ValueError:  # ragged rows stay a column of arrays
        return values


def warn_left_out(left_out: list[str], call: str, node: str) -> None:
    """One line saying which detector-file columns a whole-table read left out, and how to
    read them (by name: they may be many gigabytes of images)."""
    names = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
    warnings.warn(
        f"{call}() left out {names}: detector-file fields are read only when named, "
        f"e.g. {call}([..., {left_out[0]!r}]), or row by row with {node}[{left_out[0]!r}][i]",
        ColumnsLeftOut,
        stacklevel=3,
    )
