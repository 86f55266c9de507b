"""Fields whose data lie in detector files: read lazily, where they lie, one slice at a time.

Two generations of documents point at files. ``resource``/``datum``: each event holds a datum
id; a handler (see handlers.py) turns the resource and the datum's kwargs into the value.
``stream_resource``/``stream_datum``: a range of events maps onto a range of rows of an
HDF5 dataset, so a slice of events is one h5py read.

Every file is opened only after its real path is found inside the catalog's data roots
(roots.py). Rows whose data nobody has announced yet (a stream_resource without its
stream_datum) read as the dtype's fill value (NaN, NaT, 0, empty text), never as whatever
memory held; the node's metadata says how many rows have data.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import sqlalchemy as sa

from bluebroker.hdf5_open import open_hdf5, retry_on_conflict

from . import columns as col
from . import roots
from .errors import ExternalDataError, ExternalDataMissing, UnknownHandler
from .handlers import checking, guarded, handler_class, open_dataset
from .node import ArrayNode
from .reads import read_column
from .schema import datums, resources, stream_datums, stream_resources
from .tables import declared_dtype, declared_shape
from .writes import IN_BATCH

if TYPE_CHECKING:
    from .run import Stream

HDF5_MIMETYPES = {"application/x-hdf5"}


class ExternalArray(ArrayNode):
    """A field kept in files outside the catalog, shaped ``(events, *per-event shape)``."""

    def __init__(self, stream: Stream, path: tuple[str, ...], key: str, data_key: dict) -> None:
        super().__init__(path)
        self.stream = stream
        self.root = stream.root
        self.key = key
        self.data_key = data_key
        self.streamed = data_key.get("external") == "STREAM:"
        self._row_shape = declared_shape(data_key)
        self._dtype = declared_dtype(data_key) if data_key.get("dtype_numpy") else None
        if not self._row_shape or 0 in self._row_shape or self._dtype is None:
            self._learn_layout()

    @property
    def metadata(self) -> dict[str, Any]:
        if not self.streamed:
            return {"data_key": self.data_key, "fill_value": _fill_text(self.dtype)}
        with self.root.connect() as conn:
            rows = conn.execute(
                sa.select(sa.func.sum(stream_datums.c.seq_stop - stream_datums.c.seq_start)).where(
                    stream_datums.c.stream_id == self.stream.id,
                    stream_datums.c.data_key == self.key,
                )
            ).scalar()
        return {
            "data_key": self.data_key,
            "rows_with_data": int(rows or 0),
            "fill_value": _fill_text(self.dtype),
        }

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stream.num_rows(), *self._row_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype if self._dtype is not None else declared_dtype(self.data_key)

    @property
    def dims(self) -> tuple[str, ...]:
        own = self.data_key.get("dims") or [f"dim_{i}" for i in range(1, len(self.shape))]
        return ("time", *own)

    def _learn_layout(self) -> None:
        """The descriptor did not give a usable shape or dtype: read the first value."""
        if self.stream.num_rows() == 0:
            return
        try:
            first = self._read(0, 1, reshape=False)[0]
        except ExternalDataError:
            return  # reported when the data are read
        if not self._row_shape or 0 in self._row_shape:
            self._row_shape = tuple(first.shape)
        if self._dtype is None:
            self._dtype = first.dtype

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return self._read(start, stop, reshape=True)

    def _read(self, start: int, stop: int, reshape: bool) -> np.ndarray:
        if self.streamed:
            return self._read_streamed(start, stop)
        return self._read_datums(start, stop, reshape)

    def _fit(self, value: np.ndarray) -> np.ndarray:
        if self._row_shape and value.size == math.prod(self._row_shape):
            return value.reshape(self._row_shape)
        return value

    def _where(self, what: str) -> str:
        return f"field {self.key!r} of run {self.stream.run.uid[:8]} ({what})"

    def _allowed(self, path: str) -> str:
        """The real path to open, or OutsideDataRoots (the same words whether or not the file
        exists: nothing is looked at before the check)."""
        return roots.check(self.root.data_roots, path)

    # -- resource / datum --------------------------------------------------------------------

    def datum_lookup(
        self, start: int, stop: int
    ) -> tuple[list[str | None], dict[str, Any], dict[str, dict]]:
        """Rows [start, stop)'s datum ids (None where an event has none), the datums found
        (id -> an object with ``resource`` and ``kwargs``) and their resource documents
        (uid -> document): what reading needs from the store (a Mongo source has its own)."""
        with self.root.connect() as conn:
            ids = read_column(conn, self.stream.id, f"data/{self.key}", start, stop)
            # rows whose event had no datum id for this field (None, or NaN in a gap)
            ids = [None] * (stop - start) if ids is None else [datum_id(i) for i in ids]
            found = _datum_rows(conn, [i for i in ids if i is not None])
            res_docs = _resource_docs(conn, {r.resource for r in found.values()})
        return ids, found, res_docs

    def _read_datums(self, start: int, stop: int, reshape: bool) -> np.ndarray:
        ids, found, res_docs = self.datum_lookup(start, stop)
        values = []
        with checking(self._allowed), ExitStack() as stack:
            handlers: dict[str, Any] = {}
            for i, datum_id in enumerate(ids):
                if datum_id is None:
                    values.append(self._fill_row(start + i))
                    continue
                if datum_id not in found:
                    raise ExternalDataError(
                        f"{self._where('row ' + str(start + i))}: datum {datum_id!r} was never "
                        "received, so its data cannot be located"
                    )
                datum = found[datum_id]
                if datum.resource not in handlers:
                    handlers[datum.resource] = self._handler(res_docs[datum.resource], stack)
                value = self._call(handlers[datum.resource], res_docs[datum.resource], datum.kwargs)
                values.append(self._fit(value) if reshape else value)
        if not values:
            return np.empty((0, *self._row_shape), dtype=self.dtype)
        return col.to_array(values) if len({v.shape for v in values}) > 1 else np.stack(values)

    def _fill_row(self, row: int) -> np.ndarray:
        """What a row without data reads as: the fill value, in the field's declared shape."""
        if not self._row_shape or 0 in self._row_shape:
            raise ExternalDataError(f"{self._where('row ' + str(row))}: its event has no datum")
        return _filled(self._row_shape, self.dtype)

    def resource_path(self, doc: dict) -> str:
        return roots.resource_file(doc, self.root.root_map)

    def _handler(self, doc: dict, stack: ExitStack) -> Any:
        cls = handler_class(doc["spec"])
        if cls is None:
            raise UnknownHandler(
                f"{self._where('resource ' + doc['uid'])}: no handler for spec {doc['spec']!r}; "
                "install one in the 'databroker.handlers' entry point group"
            )
        path = self.resource_path(doc)
        real = self._allowed(path)
        try:
            with guarded():
                kwargs = doc.get("resource_kwargs", {})
                handler = retry_on_conflict(lambda: cls(real, **kwargs))
        except ExternalDataError:
            raise
        except FileNotFoundError as err:
            raise self._missing(err.filename or path, doc) from None
        except Exception as err:  # OSError, or a handler refusing its kwargs
            raise ExternalDataError(f"{self._where(path)}: cannot open: {err}") from err
        if hasattr(handler, "close"):
            stack.callback(handler.close)
        return handler

    def _call(self, handler: Any, doc: dict, kwargs: dict) -> np.ndarray:
        try:
            with guarded():
                value = np.asarray(handler(**kwargs))
        except ExternalDataError:
            raise
        except FileNotFoundError as err:
            raise self._missing(err.filename or self.resource_path(doc), doc) from None
        except Exception as err:
            raise ExternalDataError(
                f"{self._where(self.resource_path(doc))}: reading {kwargs} failed: {err}"
            ) from err
        if value.dtype.hasobject:  # a handler's own business, but never served as pointers
            raise ExternalDataError(f"{self._where(doc['uid'])}: the handler returned objects")
        return value

    def _missing(self, path: str, doc: dict) -> ExternalDataMissing:
        hint = ""
        if doc.get("root"):
            hint = f"; if the data moved, open the catalog with root_map={{{doc['root']!r}: ...}}"
        return ExternalDataMissing(
            f"{self._where('resource ' + doc['uid'])}: file {path} not found{hint}"
        )

    # -- stream_resource / stream_datum ------------------------------------------------------

    def _stream_rows(self, conn: sa.Connection, start: int, stop: int) -> list[sa.Row]:
        """Stream datums overlapping rows [start, stop) (seq_num = row + 1)."""
        return conn.execute(
            sa.select(
                stream_datums.c.seq_start,
                stream_datums.c.seq_stop,
                stream_datums.c.index_start,
                stream_resources.c.uid,
                stream_resources.c.doc,
            )
            .join(stream_resources, stream_resources.c.uid == stream_datums.c.stream_resource)
            .where(
                stream_datums.c.stream_id == self.stream.id,
                stream_datums.c.data_key == self.key,
                stream_datums.c.seq_stop > start + 1,
                stream_datums.c.seq_start < stop + 1,
            )
            .order_by(stream_datums.c.seq_start)
        ).all()

    def local_path(self, uri: str) -> str:
        return roots.stream_file(uri, self.root.root_map)

    def _read_streamed(self, start: int, stop: int) -> np.ndarray:
        with self.root.connect() as conn:
            parts = self._stream_rows(conn, start, stop)
        blocks: list[col.Chunk] = []
        files: dict[str, h5py.File] = {}
        with checking(self._allowed), ExitStack() as stack:
            for part in parts:
                doc = part.doc
                if doc["mimetype"] not in HDF5_MIMETYPES:
                    raise UnknownHandler(
                        f"{self._where(doc['uri'])}: no reader for mimetype {doc['mimetype']!r}"
                    )
                path = self.local_path(doc["uri"])
                if path not in files:
                    files[path] = self._open_hdf5(path, doc, part.uid, stack)
                blocks.append(self._block(files[path], path, doc, part, start, stop))
        return self._assemble(blocks, start, stop)

    def _open_hdf5(self, path: str, doc: dict, uid: str, stack: ExitStack) -> h5py.File:
        real = self._allowed(path)
        try:
            return stack.enter_context(
                open_hdf5(real, swmr=bool(doc["parameters"].get("swmr", False)))
            )
        except FileNotFoundError:
            raise ExternalDataMissing(
                f"{self._where('stream_resource ' + uid)}: file {path} not found"
            ) from None
        except OSError as err:  # a folder, not HDF5, unreadable
            raise ExternalDataError(f"{self._where(path)}: cannot open as HDF5: {err}") from None

    def _block(
        self, file: h5py.File, path: str, doc: dict, part: sa.Row, start: int, stop: int
    ) -> col.Chunk:
        """The rows of [start, stop) one stream_datum announces, read from its dataset."""
        dataset_name = doc["parameters"].get("dataset", "/entry/data/data")
        try:
            ds = open_dataset(file, dataset_name)
        except KeyError:
            raise ExternalDataError(
                f"{self._where(path)}: no dataset {dataset_name!r} in the file"
            ) from None
        row_shape = self._row_shape
        if not row_shape or 0 in row_shape:  # not declared: one dataset row per event
            row_shape = tuple(ds.shape[1:])
        per_event = max(1, math.prod(row_shape) // max(1, math.prod(ds.shape[1:])))
        lo = max(part.seq_start, start + 1)
        hi = min(part.seq_stop, stop + 1)
        first = part.index_start + (lo - part.seq_start)
        try:
            if first < 0 or not ds.shape:
                raise ValueError(f"no row {first} in a dataset of shape {ds.shape}")
            block = ds[first * per_event : (first + hi - lo) * per_event]
            if len(block) < (hi - lo) * per_event:
                raise ValueError(f"it has {ds.shape[0]} rows, fewer than the stream_datum promises")
            return col.Chunk(lo - 1, block.reshape((hi - lo, *row_shape)))
        except (OSError, ValueError, TypeError) as err:  # also rows that do not fit the shape
            raise ExternalDataError(f"{self._where(path)}: dataset {dataset_name}: {err}") from None

    def _assemble(self, blocks: list[col.Chunk], start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) from the blocks read; rows no block covers (not announced yet)
        hold the dtype's fill value. Blocks that do not fit one array go the general way."""
        shape = self._row_shape or (blocks[0].values.shape[1:] if blocks else ())
        dtype = self.dtype
        if any(
            b.values.shape[1:] != shape or not np.can_cast(b.values.dtype, dtype, "same_kind")
            for b in blocks
        ):
            return col.assemble(blocks, start, stop)
        out = _filled((stop - start, *shape), dtype)
        for b in blocks:
            lo, hi = max(b.start_row, start), min(b.stop_row, stop)
            if hi > lo:
                out[lo - start : hi - start] = b.values[lo - b.start_row : hi - b.start_row]
        return out

    # -- where the data lie --------------------------------------------------------------------

    def asset_locations(self) -> list[dict[str, Any]]:
        """The files holding this field, so someone with direct access can open them."""
        with self.root.connect() as conn:
            if self.streamed:
                rows = conn.execute(
                    sa.select(stream_resources.c.doc)
                    .join(stream_datums, stream_datums.c.stream_resource == stream_resources.c.uid)
                    .where(
                        stream_datums.c.stream_id == self.stream.id,
                        stream_datums.c.data_key == self.key,
                    )
                    .distinct()
                ).scalars()
                return [
                    {
                        "path": self.local_path(d["uri"]),
                        "uri": d["uri"],
                        "mimetype": d["mimetype"],
                        "parameters": d["parameters"],
                    }
                    for d in rows
                ]
            ids = read_column(conn, self.stream.id, f"data/{self.key}", 0, self.stream.num_rows())
            found = _datum_rows(conn, sorted({str(i) for i in ([] if ids is None else ids)}))
            docs = _resource_docs(conn, {r.resource for r in found.values()})
            return [
                {
                    "path": self.resource_path(d),
                    "spec": d["spec"],
                    "resource_kwargs": d.get("resource_kwargs", {}),
                }
                for d in docs.values()
            ]


def _filled(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of the dtype's fill value: NaN, NaT, else zeros (0, False, empty text)."""
    out = np.zeros(shape, dtype=dtype)
    if dtype.kind in "fc":
        out[...] = np.nan
    elif dtype.kind in "mM":
        out[...] = np.datetime64("NaT") if dtype.kind == "M" else np.timedelta64("NaT")
    return out


def datum_id(value: Any) -> str | None:
    """A stored datum id as text; None for a row without one (None, or NaN in a gap)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _fill_text(dtype: np.dtype) -> str:
    """How rows without data read, in words for the node's metadata."""
    if dtype.kind in "fc":
        return "NaN"
    if dtype.kind in "mM":
        return "NaT"
    return "empty" if dtype.kind in "SUV" else "0"


def _datum_rows(conn: sa.Connection, ids: list[str]) -> dict[str, sa.Row]:
    unique = list(dict.fromkeys(ids))
    found: dict[str, sa.Row] = {}
    for i in range(0, len(unique), IN_BATCH):
        stmt = sa.select(datums.c.datum_id, datums.c.resource, datums.c.kwargs).where(
            datums.c.datum_id.in_(unique[i : i + IN_BATCH])
        )
        found.update((row.datum_id, row) for row in conn.execute(stmt))
    return found


def _resource_docs(conn: sa.Connection, uids: set[str]) -> dict[str, dict]:
    stmt = sa.select(resources.c.uid, resources.c.doc).where(resources.c.uid.in_(sorted(uids)))
    return dict(conn.execute(stmt).all())
