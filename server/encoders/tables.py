"""Tables into bytes: Arrow, Parquet, CSV, JSON, msgpack, Excel, HDF5."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np
import pandas as pd

from bluebroker import formats

from ..errors import ApiError
from .jsonable import dumps


def _cells_as_lists(df: pd.DataFrame) -> pd.DataFrame:
    """Array-valued cells (waveforms, small images) as nested lists, which Arrow can hold."""
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object and any(
            isinstance(v, np.ndarray) for v in out[column].head(1)
        ):
            out[column] = [v.tolist() if isinstance(v, np.ndarray) else v for v in out[column]]
    return out


INDEX_KEY = b"bluebroker.index"


def _fixed_size_lists(arr: np.ndarray) -> Any:
    """Rows of a numeric n-d array as nested fixed-size Arrow lists of its own dtype (going
    through Python lists would turn uint16 images into int64)."""
    import pyarrow as pa

    values: Any = pa.array(np.ascontiguousarray(arr).reshape(-1))
    for size in reversed(arr.shape[1:]):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


def arrow_table(arrays: dict[str, np.ndarray]) -> Any:
    """An Arrow table straight from numpy columns (the first one is the index, named in the
    schema metadata so readers can restore it); array-valued cells become Arrow lists."""
    import pyarrow as pa

    columns = {}
    for name, arr in arrays.items():
        if arr.ndim > 1 and arr.dtype.kind in "biufc" and 0 not in arr.shape:
            columns[name] = _fixed_size_lists(arr)
        elif arr.ndim > 1 or arr.dtype.kind == "O":
            columns[name] = pa.array([v.tolist() if isinstance(v, np.ndarray) else v for v in arr])
        else:
            columns[name] = pa.array(arr)
    table = pa.table(columns)
    return table.replace_schema_metadata({INDEX_KEY: next(iter(arrays)).encode()})


def encode_arrays(arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Arrow IPC file bytes for :func:`arrow_table`, with ``metadata`` added to the schema's
    (as ``bluebroker.<key>``)."""
    import pyarrow as pa

    table = arrow_table(arrays)
    if metadata:
        table = table.replace_schema_metadata(
            {
                **table.schema.metadata,
                **{f"bluebroker.{k}".encode(): v.encode() for k, v in metadata.items()},
            }
        )
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode_table(df: pd.DataFrame, media: str, unread: Sequence[str] = ()) -> bytes:
    """``df`` in ``media``; ``unread`` names the table's columns that were not read (detector
    files, read only when named), which a CSV says it left out."""
    if media in (formats.ARROW, formats.PARQUET):
        import pyarrow as pa

        table = pa.Table.from_pandas(_cells_as_lists(df), preserve_index=True, nthreads=1)
        sink = io.BytesIO()
        if media == formats.ARROW:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, sink)
        return sink.getvalue()
    if media == formats.CSV:
        return encode_csv(df, unread)
    if media == formats.JSON:
        return dumps(df.reset_index().to_dict(orient="records"))
    if media == formats.MSGPACK:
        flat = df.reset_index()
        return msgpack.packb({c: _tolist(flat[c]) for c in flat.columns}, default=str)
    if media == formats.XLSX:
        sink = io.BytesIO()
        _cells_as_text(df).to_excel(sink, engine="openpyxl")
        return sink.getvalue()
    if media == formats.HDF5:
        return encode_hdf5_table(df)
    raise ApiError(406, f"tables are not served as {media}")


def unread_columns(node: Any, columns: Sequence[str] | None) -> list[str]:
    """The columns of ``node`` a read of ``columns`` leaves out: with no columns named, a
    stream's detector-file fields (only read when named)."""
    if columns is not None or not hasattr(node, "internal_columns"):
        return []
    read = set(node.internal_columns)
    return [c for c in node.columns if c not in read]


def _per_row_shape(values: pd.Series) -> tuple[int, ...] | None:
    """The shape of a column's per-row arrays (``(64, 64)`` for images), or None when its
    cells are single values that a CSV cell can hold."""
    if values.dtype != object:
        return None
    for v in values:
        if isinstance(v, np.ndarray) and v.ndim:
            return v.shape
        if isinstance(v, list | tuple):
            return (len(v),)
    return None


def encode_csv(df: pd.DataFrame, unread: Sequence[str] = ()) -> bytes:
    """CSV holds one value per cell. Columns with an array per row (and the detector-file
    columns not read) are left out and named in a first ``#`` line, never written as
    truncated numpy text; a request for such columns alone is a 400 saying where to read
    them."""
    shapes = {c: _per_row_shape(df[c]) for c in df.columns}
    arrays = {c: shape for c, shape in shapes.items() if shape is not None}
    if arrays and len(arrays) == len(df.columns):
        name, shape = next(iter(arrays.items()))
        raise ApiError(
            400,
            f"CSV holds one value per cell, and {', '.join(arrays)} "
            f"{'holds' if len(arrays) == 1 else 'hold'} {_size(shape)} per row: read "
            f"{name} as an array (/array/full/<table path>/{name}?slice=0&format=csv for one "
            "row), or the table as parquet, h5 or json (format=...)",
        )
    notes = [f"{c} ({_size(shape)} per row)" for c, shape in arrays.items()]
    notes += [f"{c} (detector file: read only when named)" for c in unread]
    text = df.drop(columns=list(arrays)).to_csv()
    if notes:
        text = (
            f"# left out of this CSV: {'; '.join(notes)}. CSV holds one value per cell: read "
            "these as arrays (/array/full/...), or the table as parquet, h5 or json\n" + text
        )
    return text.encode()


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "1"


def _tolist(series: pd.Series) -> list:
    return [v.tolist() if isinstance(v, np.ndarray) else v for v in series.tolist()]


def _cells_as_text(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [str(v.tolist()) if isinstance(v, np.ndarray) else v for v in out[column]]
    return out


def write_hdf5_group(group, df: pd.DataFrame) -> None:
    """One dataset per column (and ``seq_num`` for the index) in an h5py group."""
    import h5py

    group.create_dataset(df.index.name or "index", data=df.index.to_numpy())
    for column in df.columns:
        values = df[column]
        if values.dtype == object:
            if any(isinstance(v, np.ndarray) for v in values):
                data = np.stack(list(values))
            else:
                data = np.array([str(v) for v in values], dtype=h5py.string_dtype())
        else:
            data = values.to_numpy()
        group.create_dataset(str(column), data=data)


def encode_hdf5_table(df: pd.DataFrame) -> bytes:
    import h5py

    sink = io.BytesIO()
    with h5py.File(sink, "w") as f:
        write_hdf5_group(f, df)
    return sink.getvalue()
