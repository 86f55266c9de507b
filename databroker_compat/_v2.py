"""v2-style access as in Databroker 1.2.5: ``databroker.catalog['csx']``, ``cat[-1]``,
``cat.search({...})``, ``run.metadata['start']``, ``run.primary.read()``,
``run.documents(fill=...)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from bluebroker.mongo_queries import from_mongo

from . import _config
from ._documents import Filler

if TYPE_CHECKING:
    import xarray

    from ._broker import Broker

FILL = ("yes", "no")


class Catalog(Mapping):
    """Runs of one configured catalog, by uid; ``cat[-1]``, ``cat[scan_id]`` work too."""

    def __init__(self, broker: Broker, queries: tuple = ()) -> None:
        self._broker = broker
        self._queries = queries

    @property
    def v1(self) -> Broker:
        return self._broker

    @property
    def v2(self) -> Catalog:
        return self

    @property
    def name(self) -> str | None:
        return self._broker.name

    def _client(self) -> Any:
        client = self._broker._catalog
        for query in self._queries:
            client = client.search(query)
        return client

    def search(self, query: dict[str, Any]) -> Catalog:
        """Runs matching a Mongo-style query on start documents (``{'plan_name': 'scan',
        'num_points': {'$gt': 3}}``); searches chain."""
        return Catalog(self._broker, (*self._queries, *from_mongo(query)))

    def __getitem__(self, key: Any) -> Run:
        client = self._client()
        if isinstance(key, int) and not isinstance(key, bool) and key < 0:
            return Run(self._broker, client.values()[key])
        return Run(self._broker, client[key])

    def __iter__(self) -> Iterator[str]:
        yield from self._client().sort(("start.time", -1)).keys()

    def __len__(self) -> int:
        return len(self._client())

    def __repr__(self) -> str:
        return f"<Catalog {self._broker.name or ''} ({len(self)} runs)>"


class Run(Mapping):
    """One run: ``metadata`` (start, stop), streams by key or attribute, ``documents()``."""

    def __init__(self, broker: Broker, client: Any) -> None:
        self._broker = broker
        self._client = client

    @property
    def metadata(self) -> dict[str, Any]:
        md = self._client.metadata
        return {"start": md["start"], "stop": md.get("stop"), "summary": md.get("summary", {})}

    def __getitem__(self, name: str) -> Stream:
        return Stream(self._client[name])

    def __getattr__(self, name: str) -> Stream:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"this run has no stream {name!r}; streams: {self._names()}"
            ) from None

    def _names(self) -> list[str]:
        names = self._client.metadata.get("summary", {}).get("stream_names")
        return list(names if names is not None else self._client.keys())

    def __iter__(self) -> Iterator[str]:
        yield from self._names()

    def __len__(self) -> int:
        return len(self._names())

    def documents(self, fill: str = "no") -> Iterator[tuple[str, dict]]:
        """The documents as written; ``fill='yes'`` puts detector data in place of datum
        ids (in events and event pages)."""
        if fill not in FILL:
            raise ValueError(f"fill must be one of {FILL}, not {fill!r}")
        docs = self._client.documents()
        if fill == "no":
            yield from docs
            return
        from ._header import Header

        filler = Filler(Header(self._broker, self._client), True)
        streams: dict[str, str] = {}
        rows: dict[str, int] = {}
        for name, doc in docs:
            if name == "descriptor":
                streams[doc["uid"]] = doc.get("name", "primary")
            elif name in ("event", "event_page") and doc["descriptor"] in streams:
                stream = streams[doc["descriptor"]]
                doc = _fill(filler, stream, rows, name, doc)
            yield name, doc

    canonical = documents

    def __repr__(self) -> str:
        return repr(self._client)


class Stream:
    """One event stream: ``read()`` into xarray (dimension ``time``), ``to_dask()``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def metadata(self) -> dict[str, Any]:
        return {"descriptors": self._client.descriptors}

    def read(self) -> xarray.Dataset:
        """Every field, detector images read, as Databroker's v2 ``read()`` gave them."""
        return self._client.read([c for c in self._client["data"].columns if c != "time"])

    def to_dask(self) -> xarray.Dataset:
        from ._lazy import lazy_dataset

        return lazy_dataset(self._client)

    def __repr__(self) -> str:
        return f"<Stream {self._client.path[-1]!r}>"


def _fill(filler: Filler, stream: str, rows: dict[str, int], name: str, doc: dict) -> dict:
    if name == "event":
        row = rows.get(stream, 0)
        rows[stream] = row + 1
        return filler.fill(stream, row, doc)
    n = len(doc["seq_num"])
    row = rows.get(stream, 0)
    rows[stream] = row + n
    data, filled = dict(doc["data"]), dict(doc.get("filled") or {})
    for i in range(n):
        event = {"data": {k: v[i] for k, v in doc["data"].items()}, "filled": {}}
        event = filler.fill(stream, row + i, event)
        for key, value in event["filled"].items():
            data[key] = list(data[key])
            data[key][i] = event["data"][key]
            filled.setdefault(key, [False] * n)
            filled[key] = list(filled[key])
            filled[key][i] = value
    return {**doc, "data": data, "filled": filled}


class Catalogs(Mapping):
    """``databroker.catalog``: every configured catalog by name (``catalog['csx']``)."""

    def __getitem__(self, name: str) -> Catalog:
        from ._broker import Broker

        try:
            return Broker.named(name).v2
        except FileNotFoundError as err:
            raise KeyError(str(err)) from None

    def __iter__(self) -> Iterator[str]:
        yield from _config.list_configs()

    def __len__(self) -> int:
        return len(_config.list_configs())

    def __repr__(self) -> str:
        return f"<databroker catalogs {list(self)}>"
