"""What Tiled's own client needs beyond our envelope: Arrow schemas of tables (the
``arrow_schema`` of Tiled's table structure, from which its client builds empty frames), the
pandas metadata that makes ``seq_num`` come back as the index, and data sources in Tiled's
shape. Kept apart so the routes only say *when* these are sent."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Any

import numpy as np

ARROW_SCHEMA_PREFIX = "data:application/vnd.apache.arrow.file;base64,"
# Legacy resource specs (area-detector handlers) as media types, as TiledWriter names them.
HANDLER_MIMETYPES = {
    "AD_HDF5": "application/x-hdf5",
    "AD_HDF5_SWMR": "application/x-hdf5",
    "AD_TIFF": "multipart/related;type=image/tiff",
}
HANDLER_DATASETS = {"AD_HDF5": "/entry/data/data", "AD_HDF5_SWMR": "/entry/data/data"}


def _arrow_type(shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """The Arrow type of one column whose values have ``shape`` (rows first), as the table
    routes send it: numbers as themselves, n-d cells as nested fixed-size lists, text as
    strings."""
    import pyarrow as pa

    dtype = np.dtype(dtype)
    if dtype.kind in "US":
        return pa.string()
    if dtype.kind in "OV":
        return pa.null() if len(shape) <= 1 else pa.list_(pa.null())
    kind: Any = pa.from_numpy_dtype(dtype.newbyteorder("="))
    for size in reversed(shape[1:]):
        kind = pa.list_(kind, size) if size else pa.list_(kind)
    return kind


@lru_cache(maxsize=1024)
def _pandas_metadata(index: str, columns: tuple[tuple[str, str], ...]) -> bytes:
    """pandas' own schema metadata for a frame indexed by ``index`` with ``columns`` (name,
    numpy dtype string; ``object`` for cells holding arrays), as pyarrow writes it."""
    import pandas as pd
    import pyarrow as pa

    frame = pd.DataFrame(
        {
            name: pd.Series([], dtype=object if dt == "object" else np.dtype(dt))
            for name, dt in columns
        },
        index=pd.Index([], dtype="int64", name=index),
    )
    return pa.Schema.from_pandas(frame, preserve_index=True).metadata[b"pandas"]


def _pandas_dtype(shape: tuple[int, ...], dtype: np.dtype) -> str:
    dtype = np.dtype(dtype)
    if len(shape) > 1 or dtype.kind in "OUSV":
        return "object"
    return dtype.newbyteorder("=").str.lstrip("=<>|") if dtype.kind != "b" else "bool"


def arrow_schema(index: str, infos: dict[str, tuple[tuple[int, ...], np.dtype]]) -> str:
    """Tiled's ``arrow_schema``: the base64 Arrow IPC schema, data-URI prefixed, of a table
    with ``index`` (int64) and the columns of ``infos`` (name -> (shape, dtype)). Cached by
    layout (not by row count), so listing a stream costs it once per kind of stream."""
    layout = tuple(
        (name, tuple(shape[1:]), np.dtype(dt).str) for name, (shape, dt) in infos.items()
    )
    return _arrow_schema(index, layout)


@lru_cache(maxsize=1024)
def _arrow_schema(index: str, layout: tuple[tuple[str, tuple[int, ...], str], ...]) -> str:
    import pyarrow as pa

    fields = [pa.field(index, pa.int64())]
    fields += [pa.field(name, _arrow_type((0, *row), np.dtype(dt))) for name, row, dt in layout]
    described = tuple((name, _pandas_dtype((0, *row), np.dtype(dt))) for name, row, dt in layout)
    schema = pa.schema(fields, metadata={b"pandas": _pandas_metadata(index, described)})
    return ARROW_SCHEMA_PREFIX + base64.b64encode(schema.serialize().to_pybytes()).decode()


def frame_schema(frame: Any) -> str:
    """``arrow_schema`` of a small pandas frame that is read whole (configuration tables)."""
    import pyarrow as pa

    head = frame.head(0).copy()
    for column in head.columns:
        if head[column].dtype == object:
            head[column] = head[column].astype(object)
    schema = pa.Schema.from_pandas(head, preserve_index=True)
    return ARROW_SCHEMA_PREFIX + base64.b64encode(schema.serialize().to_pybytes()).decode()


def _arrow_pandas_dtype(kind: Any) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return np.dtype(kind.to_pandas_dtype()).str.lstrip("<>|=")
    return "object"


def with_pandas_index(body: bytes) -> bytes:
    """An Arrow IPC file from the table routes, its first column (``bluebroker.index``)
    declared as the pandas index, so ``read_pandas()`` gives ``seq_num`` as the index as
    Tiled's tables do."""
    import pyarrow as pa

    table = pa.ipc.open_file(pa.py_buffer(body)).read_all()
    meta = dict(table.schema.metadata or {})
    index = meta.get(b"bluebroker.index", table.column_names[0].encode()).decode()
    described = tuple(
        (name, _arrow_pandas_dtype(kind))
        for name, kind in zip(table.column_names, table.schema.types, strict=True)
        if name != index
    )
    meta[b"pandas"] = _pandas_metadata(index, described)
    table = table.replace_schema_metadata(meta)
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def data_source(asset: dict[str, Any], structure: dict[str, Any]) -> dict[str, Any]:
    """One external array's data source in Tiled's shape (``structure_family``,
    ``structure``, ``mimetype``, ``parameters``, ``assets`` with ``is_directory`` and
    ``parameter``), plus the file's ``path`` for people who open it directly."""
    uri = asset.get("uri") or f"file://localhost{asset['path']}"
    spec = asset.get("spec")
    parameters = dict(asset.get("parameters", asset.get("resource_kwargs", {})))
    if spec in HANDLER_DATASETS:  # as TiledWriter turns these resources into data sources
        parameters.setdefault("dataset", HANDLER_DATASETS[spec])
    return {
        "id": None,
        "structure_family": "array",
        "structure": structure,
        "mimetype": asset.get("mimetype") or HANDLER_MIMETYPES.get(spec, spec),
        "parameters": parameters,
        "properties": {},
        "management": "external",
        "assets": [
            {
                "data_uri": uri,
                "path": asset["path"],
                "is_directory": False,
                "parameter": "data_uris",
                "num": None,
                "id": None,
            }
        ],
    }
