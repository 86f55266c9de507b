"""A run and its streams: the containers a scientist walks through to reach data."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bluebroker import packing

from .errors import NotFound
from .node import Container
from .schema import descriptors, documents, streams

if TYPE_CHECKING:
    import xarray

    from .tables import ConfigTable, EventTable
    from .tree import Catalog


def unpack(payload: bytes) -> Any:
    return packing.unpackb(payload)


# The replay log's name for a row holding several consecutive events (msgpack back to back).
EVENT_GROUP = "event*"


def pack(doc: Any) -> bytes:
    return packing.packb(doc)


class Run(Container):
    """One Bluesky run; metadata is ``{start, stop, summary}``, children are its streams."""

    specs = ("BlueskyRun",)

    def __init__(self, root: Catalog, path: tuple[str, ...], row: sa.Row) -> None:
        super().__init__(path)
        self.root = root
        self.id = row.id
        self.uid = row.uid
        self.start = row.start
        self.stop = row.stop
        self.summary = row.summary

    @property
    def metadata(self) -> dict[str, Any]:
        summary = dict(self.summary)
        if self.stop is None:  # live counts while the run is going
            summary["num_events"] = {name: n for name, n, _ in self._streams()}
        return {"start": self.start, "stop": self.stop, "summary": summary}

    def _streams(self) -> list[tuple[str, int, int]]:
        with self.root.connect() as conn:
            rows = conn.execute(
                sa.select(streams.c.name, streams.c.num_rows, streams.c.stream_rows, streams.c.id)
                .where(streams.c.run_id == self.id)
                .order_by(streams.c.id)
            ).all()
        return [(r.name, max(r.num_rows, r.stream_rows), r.id) for r in rows]

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, _, _ in self._streams()])

    def __len__(self) -> int:
        return len(self._streams())

    def __getitem__(self, key: str) -> Stream:
        for name, _, stream_id in self._streams():
            if name == key:
                return Stream(self, (*self.path, name), stream_id)
        raise NotFound(
            f"run {self.uid[:8]} has no stream {key!r}; streams: {sorted(self) or 'none yet'}"
        )

    def documents(self) -> Iterator[tuple[str, dict]]:
        """The run's documents exactly as they were written, in order (pages stay pages)."""
        last = 0
        while True:
            with self.root.connect() as conn:
                page = conn.execute(
                    sa.select(documents.c.id, documents.c.name, documents.c.payload)
                    .where(documents.c.run_id == self.id, documents.c.id > last)
                    .order_by(documents.c.id)
                    .limit(5000)
                ).all()
            for row in page:
                if row.name == EVENT_GROUP:
                    unpacker = packing.unpacker()
                    unpacker.feed(row.payload)
                    for doc in unpacker:
                        yield "event", doc
                else:
                    yield row.name, unpack(row.payload)
            if len(page) < 5000:
                return
            last = page[-1].id

    def __repr__(self) -> str:
        when = datetime.fromtimestamp(self.start["time"]).strftime("%Y-%m-%d %H:%M")
        names = "{" + ", ".join(repr(n) for n in sorted(self)) + "}"
        scan = f" scan_id={self.start['scan_id']}" if "scan_id" in self.start else ""
        return f"<Run {names}{scan} uid={self.uid[:8]!r} {when}>"


class Stream(Container):
    """One event stream (``primary``, ``baseline``...): ``data``, ``timestamps``, ``config``."""

    specs = ("BlueskyEventStream",)

    def __init__(self, run: Run, path: tuple[str, ...], stream_id: int) -> None:
        super().__init__(path)
        self.run = run
        self.root = run.root
        self.id = stream_id
        self.name = path[-1]

    @functools.cached_property
    def descriptors(self) -> list[dict]:
        with self.root.connect() as conn:
            return list(
                conn.execute(
                    sa.select(descriptors.c.doc)
                    .where(descriptors.c.stream_id == self.id)
                    .order_by(descriptors.c.id)
                ).scalars()
            )

    @property
    def data_keys(self) -> dict[str, dict]:
        """Union of the descriptors' data_keys, in order of first appearance."""
        keys: dict[str, dict] = {}
        for d in self.descriptors:
            for k, v in d["data_keys"].items():
                keys.setdefault(k, v)
        return keys

    @property
    def metadata(self) -> dict[str, Any]:
        return {"stream_name": self.name, "descriptors": self.descriptors}

    def num_rows(self) -> int:
        with self.root.connect() as conn:
            row = conn.execute(
                sa.select(streams.c.num_rows, streams.c.stream_rows).where(streams.c.id == self.id)
            ).one()
        return max(row)

    def __iter__(self) -> Iterator[str]:
        return iter(("data", "timestamps", "config"))

    def __len__(self) -> int:
        return 3

    def read(self, fields: list[str] | None = None) -> xarray.Dataset:
        """The stream as an ``xarray.Dataset`` along dimension ``time`` (external fields are
        read only when named in ``fields``, as in :meth:`EventTable.read`)."""
        import xarray

        table = self["data"]
        names = table.internal_columns[1:] if fields is None else list(fields)
        n = len(table)
        times = table.read(["time"])
        variables = {}
        for name in names:
            node = table[name]
            values = node.read_rows(0, n)
            dims = (
                node.dims[: values.ndim]
                if len(node.dims) >= values.ndim
                else ("time", *(f"dim_{i}" for i in range(1, values.ndim)))
            )
            variables[name] = xarray.Variable(dims, values, attrs=_attrs(self.data_keys[name]))
        return xarray.Dataset(
            variables,
            coords={"time": times["time"].to_numpy(), "seq_num": ("time", times.index.to_numpy())},
            attrs={"stream_name": self.name, "uid": self.run.uid},
        )

    def __getitem__(self, key: str) -> EventTable | ConfigContainer:
        from .tables import EventTable

        if key in ("data", "timestamps"):
            return EventTable(self, key)
        if key == "config":
            return ConfigContainer(self)
        raise NotFound(f"stream {self.name!r} has data, timestamps and config, not {key!r}")


def _attrs(data_key: dict) -> dict[str, Any]:
    """Descriptor facts worth carrying along with a variable (netCDF needs plain values)."""
    return {
        k: v
        for k, v in data_key.items()
        if k in ("source", "units", "precision", "dtype", "object_name") and v is not None
    }


class ConfigContainer(Container):
    """Configuration readings per object: ``config/<object>`` is a table, one row per descriptor."""

    def __init__(self, stream: Stream) -> None:
        super().__init__((*stream.path, "config"))
        self.stream = stream

    def _objects(self) -> list[str]:
        names: dict[str, None] = {}
        for d in self.stream.descriptors:
            for obj in d.get("configuration", {}):
                names[obj] = None
        return list(names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._objects())

    def __len__(self) -> int:
        return len(self._objects())

    def __getitem__(self, key: str) -> ConfigTable:
        from .tables import ConfigTable

        if key not in self._objects():
            raise NotFound(
                f"stream {self.stream.name!r} has no configuration for {key!r}; "
                f"objects: {self._objects()}"
            )
        return ConfigTable(self.stream, key)
