"""A Mongo source's streams, their ``data``/``timestamps`` tables and their columns.

A stream's rows are its descriptors' events, descriptor after descriptor (by time), each
descriptor's events by time: the order in which ``bluebroker ingest mongo`` writes them, so
a run reads the same served live or migrated. Tables are built column-wise: a read asks
MongoDB only for the fields wanted (a projection), and only for the rows wanted: a slice of
a descriptor whose events are numbered 1..n (nearly always) is a ``seq_num`` range; any other
is the descriptor's events by time with ``skip``/``limit``. Detector data referenced through
resource/datum are read where they lie with the same handlers (and data roots) as the SQL
catalog's (catalog/external.py), the datums and resources looked up in the asset database.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import columns as col
from ..errors import ExternalDataError, NotFound
from ..external import ExternalArray, datum_id
from ..node import ArrayNode, Container
from ..run import ConfigContainer, Stream
from ..tables import EventTable, declared_dtype, declared_shape
from .documents import document, plain

if TYPE_CHECKING:
    from .runs import MongoRun


def _value(event: dict, kind: str, field: str) -> Any:
    if field == "time":
        return plain(event.get("time"), "time")
    return plain((event.get(kind) or {}).get(field), "time" if kind == "timestamps" else "")


class MongoStream(Stream):
    """One stream of a Mongo run: the events of its descriptors (``name`` or, without one,
    ``primary``)."""

    live = False

    def __init__(self, run: MongoRun, name: str, descriptors: list[dict]) -> None:
        Container.__init__(self, (*run.path, name))
        self.run = run
        self.source = run.source
        self.root = run.source
        self.id = None
        self.name = name
        self.__dict__["descriptors"] = descriptors  # Stream.descriptors is a cached property

    @functools.cached_property
    def counts(self) -> list[tuple[str, int]]:
        """(descriptor uid, events) in row order; a stopped run's are remembered."""
        events = self.source.col("event")
        out = []
        with self.source.guard():
            for d in self.descriptors:
                n = self.source.recall("count", d["uid"])
                if n is None:
                    n = events.count_documents({"descriptor": d["uid"]})
                    if self.run.stop is not None:
                        self.source.remember("count", d["uid"], n)
                out.append((d["uid"], n))
        return out

    def num_rows(self) -> int:
        return sum(n for _, n in self.counts)

    @functools.cached_property
    def first_event(self) -> dict | None:
        """The first row's event (its values tell the columns' dtypes and shapes), which
        never changes once written: remembered."""
        uid = next((uid for uid, n in self.counts if n), None)
        if uid is None:
            return None
        found = self.source.recall("first", uid)
        if found is None:
            found = self.events(None, 0, 1)[0]
            self.source.remember("first", uid, found)
        return found

    def _numbered(self, uid: str, n: int) -> bool:
        """Whether the descriptor's events, by time, are numbered 1..n (checked at both ends,
        and remembered by the source for this n): then rows [lo, hi) are the events with
        lo < seq_num <= hi."""
        known = self.source.recall("numbered", (uid, n))
        if known is None:
            events = self.source.col("event")
            ends = [
                events.find_one({"descriptor": uid}, {"seq_num": 1}, sort=[("time", d)])
                for d in (1, -1)
            ]
            known = [e and e.get("seq_num") for e in ends] == [1, n]
            self.source.remember("numbered", (uid, n), known)
        return known

    def _rows_of(self, uid: str, n: int, projection: dict | None, lo: int, hi: int) -> list[dict]:
        events = self.source.col("event")
        if lo != 0 and self._numbered(uid, n):  # from the start: the time index's order
            found = list(
                events.find(
                    {"descriptor": uid, "seq_num": {"$gt": lo, "$lte": hi}},
                    projection,
                    sort=[("seq_num", 1)],
                )
            )
            if [e.get("seq_num") for e in found] == list(range(lo + 1, hi + 1)):
                return found
        return list(
            events.find(
                {"descriptor": uid}, projection, sort=[("time", 1)], skip=lo, limit=hi - lo
            )
        )

    def events(self, fields: list[str] | None, start: int, stop: int) -> list[dict]:
        """Rows [start, stop) as Mongo event documents holding ``seq_num``, ``time`` and the
        dotted ``fields`` (``data.det1``, ``timestamps.det1``; None: everything)."""
        projection = None
        if fields is not None:
            projection = {"_id": 0, "seq_num": 1, "time": 1, **dict.fromkeys(fields, 1)}
        out: list[dict] = []
        offset = 0
        with self.source.guard():
            for uid, n in self.counts:
                lo, hi = max(start - offset, 0), min(stop - offset, n)
                if hi > lo:
                    out += self._rows_of(uid, n, projection, lo, hi)
                offset += n
        return out

    def __getitem__(self, key: str) -> MongoEventTable | ConfigContainer:
        if key in ("data", "timestamps"):
            return MongoEventTable(self, key)
        if key == "config":
            return ConfigContainer(self)
        raise NotFound(f"stream {self.name!r} has data, timestamps and config, not {key!r}")


class MongoEventTable(EventTable):
    """``data`` or ``timestamps`` of a Mongo stream, read column-wise from the events."""

    live = False

    def __len__(self) -> int:
        return self.stream.num_rows()

    def column_infos(self, rows: int | None = None) -> dict[str, tuple[ArrayNode, tuple]]:
        return {name: (node, node.info()) for name in self.columns for node in [self[name]]}

    def _external_array(self, path: tuple[str, ...], column: str, data_key: dict) -> ArrayNode:
        return MongoExternalArray(self.stream, path, column, data_key)

    def _stored_array(self, path: tuple[str, ...], column: str, data_key: dict) -> ArrayNode:
        return MongoColumn(self, column, data_key)

    def read_arrays(
        self,
        columns: list[str] | None = None,
        fill: bool = True,
        start: int = 0,
        stop: int | None = None,
        preread: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """As the SQL table's (``fill=False``: detector fields as their datum ids), with one
        MongoDB query for every stored column asked for."""
        names = self.internal_columns if columns is None else list(columns)
        stop = len(self) if stop is None else stop
        nodes = {name: self[name] for name in names}
        stored = [n for n, node in nodes.items() if not fill or isinstance(node, MongoColumn)]
        fields = [f"{self.kind}.{n}" for n in stored if n != "time"]
        events = self.stream.events(fields, start, max(start, stop))
        data: dict[str, np.ndarray] = {
            "seq_num": np.asarray([e.get("seq_num") for e in events], dtype=np.int64)
        }
        for name, node in nodes.items():
            if name in stored:
                values = [_value(e, self.kind, name) for e in events]
                dtype = node.data_key.get("dtype_numpy") if isinstance(node, MongoColumn) else None
                data[name] = col.to_array(values, dtype) if values else node_empty(node)
            else:
                data[name] = node.read_rows(start, stop)
        return data


def node_empty(node: ArrayNode) -> np.ndarray:
    shape, dtype, _ = node.info()
    return np.empty((0, *shape[1:]), dtype=dtype)


class MongoColumn(ArrayNode):
    """One column of a Mongo stream's table (``time`` or a field's values or timestamps)."""

    live = False

    def __init__(self, table: MongoEventTable, column: str, data_key: dict) -> None:
        super().__init__((*table.path, column))
        self.stream = table.stream
        self.kind = table.kind
        self.column = column
        self.data_key = data_key
        self.field = "time" if column == "time" else f"{table.kind}.{column}"

    @property
    def metadata(self) -> dict[str, Any]:
        return {"data_key": self.data_key}

    def _layout(self) -> tuple[np.dtype, tuple[int, ...]]:
        first = self.stream.first_event
        if first is None:
            return declared_dtype(self.data_key), declared_shape(self.data_key)
        value = _value(first, self.kind, self.column)
        arr = col.to_array([value], self.data_key.get("dtype_numpy"))
        return arr.dtype, tuple(arr.shape[1:])

    def info(self) -> tuple[tuple[int, ...], np.dtype, tuple[str, ...]]:
        dtype, row_shape = self._layout()
        own = self.data_key.get("dims") or [f"dim_{i}" for i in range(1, len(row_shape) + 1)]
        return (self.stream.num_rows(), *row_shape), dtype, ("time", *own)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.info()[0]

    @property
    def dtype(self) -> np.dtype:
        return self.info()[1]

    @property
    def dims(self) -> tuple[str, ...]:
        return self.info()[2]

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        events = self.stream.events([] if self.field == "time" else [self.field], start, stop)
        if not events:
            return node_empty(self)
        values = [_value(e, self.kind, self.column) for e in events]
        return col.to_array(values, self.data_key.get("dtype_numpy"))


class MongoExternalArray(ExternalArray):
    """A field whose events hold datum ids: datums and resources from the asset database."""

    live = False

    def __init__(self, stream: MongoStream, path: tuple[str, ...], key: str, data_key: dict):
        if data_key.get("external") == "STREAM:":
            raise ExternalDataError(
                f"field {key!r}: stream_resource data are not read from a MongoDB source"
            )
        super().__init__(stream, path, key, data_key)

    @property
    def metadata(self) -> dict[str, Any]:
        return {"data_key": self.data_key, "fill_value": "NaN" if self.dtype.kind in "fc" else "0"}

    def datum_lookup(
        self, start: int, stop: int
    ) -> tuple[list[str | None], dict[str, Any], dict[str, dict]]:
        source = self.stream.source
        rows = self.stream.events([f"data.{self.key}"], start, stop)
        ids = [datum_id(_value(e, "data", self.key)) for e in rows]
        wanted = sorted({i for i in ids if i is not None})
        with source.guard():
            datums = [document(d) for d in source.col("datum").find({"datum_id": {"$in": wanted}})]
            found = {
                d["datum_id"]: SimpleNamespace(resource=d["resource"], kwargs=d["datum_kwargs"])
                for d in datums
            }
            uids = sorted({d.resource for d in found.values()})
            docs = source.col("resource").find({"uid": {"$in": uids}})
            resources = {d["uid"]: source.reader._resource(d, self.stream.run.uid) for d in docs}
        return ids, found, resources

    def asset_locations(self) -> list[dict[str, Any]]:
        _, _, docs = self.datum_lookup(0, self.stream.num_rows())
        return [
            {
                "path": self.resource_path(d),
                "spec": d["spec"],
                "resource_kwargs": d.get("resource_kwargs", {}),
            }
            for d in docs.values()
        ]
