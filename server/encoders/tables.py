"""Tables into bytes: Arrow, Parquet, CSV, JSON, msgpack, Excel, HDF5."""

from __future__ import annotations

import io
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


def encode_table(df: pd.DataFrame, media: str) -> bytes:
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
        return df.to_csv().encode()
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
