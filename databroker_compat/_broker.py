"""``Broker``: Databroker 1.2.5's v1 entry point, over a bluebroker server."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd

from bluebroker import packing
from bluebroker.client import CatalogClient, NotFoundError, from_uri

from . import _config
from ._doct import wrap_in_deprecated_doct
from ._documents import ALL
from ._header import Header
from ._lazy import Images
from ._results import Results, _ensure_list
from ._search import to_queries
from ._v1_extras import Registry, _no_registry, _refusal, export, legacy_documents

_NO_LONGER = (
    "This method is no longer supported. If you need this please contact the developers by "
    "opening an issue here: https://github.com/bluesky/databroker/issues/new "
)


class Broker:
    """A catalog of runs on a bluebroker server, with Databroker 1.x's API.

    ``Broker.named('csx')`` reads ``csx.yml`` (see :mod:`databroker._config`);
    ``Broker.from_config({'uri': ..., 'catalog': 'csx/raw'})`` takes the same keys.
    """

    def __init__(
        self,
        uri: str,
        catalog: str,
        *,
        api_key: str | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        server: Any = None,
        external_fetchers: dict[str, Callable[[dict, dict], Any]] | None = None,
    ) -> None:
        self._uri = uri
        self._path = tuple(p for p in catalog.split("/") if p)
        self._api_key = api_key
        self._name = name
        self._config = config
        self._server = server  # an embedded server (temp()) lives as long as its Broker
        self._client: CatalogClient | None = None
        self.prepare_hook: Callable[[str, dict], dict] = wrap_in_deprecated_doct
        self.aliases: dict[str, Any] = {}
        self.filters: dict[str, Any] = {}
        self.timezone: str | None = (config or {}).get("timezone")
        # name -> f(start, stop): each Header's ``ext.<name>``, as in 1.2.5
        self.external_fetchers = dict(external_fetchers or {})
        self._reg = Registry()

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def named(cls, name: str, auto_register: bool = True) -> Broker:
        """The Broker configured in ``{name}.yml``; ``'temp'`` makes a throwaway one."""
        if name == "temp":
            return temp()
        return cls.from_config(_config.lookup_config(name), auto_register, name=name)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], auto_register: bool = True, name: str | None = None
    ) -> Broker:
        """A Broker from a config mapping: ``uri``, ``catalog``, optional ``api_key`` and
        ``timezone``. ``auto_register`` is accepted for compatibility (handlers run on the
        server)."""
        config = _config.check_config(
            config, f"the config {name!r}" if name else "the config", name=name
        )
        return cls(
            config["uri"],
            config["catalog"],
            api_key=config.get("api_key"),
            name=name,
            config=dict(config),
        )

    def get_config(self) -> dict[str, Any] | None:
        return self._config

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def v1(self) -> Broker:
        return self

    @property
    def reg(self) -> Registry:
        """Registry of externally stored data (their handlers run on the server here)."""
        return self._reg

    @property
    def fs(self) -> Registry:
        warnings.warn("fs is deprecated, use `db.reg` instead", stacklevel=2)
        return self.reg

    def fetch_external(self, start: dict, stop: dict) -> dict[str, Any]:
        """``{name: fetcher(start, stop)}`` for every external fetcher (a Header's ``ext``)."""
        return {k: func(start, stop) for k, func in self.external_fetchers.items()}

    def stream_names_given_header(self, header: Header) -> list[str]:
        return header.stream_names

    @property
    def v2(self) -> Any:
        from ._v2 import Catalog

        return Catalog(self)

    @property
    def _catalog(self) -> CatalogClient:
        """The server's catalog node, fetched on first use (a new beamline's catalog may not
        exist until its first run is inserted)."""
        if self._client is None:
            root = from_uri(self._uri, api_key=self._api_key)
            try:
                node = root["/".join(self._path)] if self._path else root
            except NotFoundError:
                raise KeyError(
                    f"no catalog {'/'.join(self._path)!r} on {self._uri} yet; it has "
                    f"{list(root)}. It is created by the first run inserted into it."
                ) from None
            if not isinstance(node, CatalogClient):
                raise TypeError(
                    f"{'/'.join(self._path)!r} on {self._uri} is not a catalog of runs; "
                    "point 'catalog:' at one such as 'csx/raw'"
                )
            self._client = node
        return self._client

    # -- finding runs ----------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        """``db[-1]`` newest, ``db[scan_id]``, ``db['uid or prefix']``, ``db[-3:]`` (newest
        first), ``db[[k1, k2]]``."""
        if not isinstance(key, str) and isinstance(key, Iterable):
            return [self[k] for k in key]
        if isinstance(key, slice):
            return self._slice(key)
        if isinstance(key, bool):
            raise TypeError("runs are looked up by uid, uid prefix, scan_id or negative index")
        if isinstance(key, str) and key.lstrip("-").isdigit():
            # '-1' and '42' mean -1 and 42, as in 1.2.5; but an all-digit string is also a
            # possible uid prefix ('47887557'), so it is one when no scan_id matches.
            try:
                return self[int(key)]
            except (KeyError, IndexError):
                if key.startswith("-"):
                    raise
            try:
                return Header(self, self._catalog[key])
            except KeyError:
                raise KeyError(
                    f"no run with scan_id {int(key)} and none whose uid starts with {key!r} "
                    f"in {'/'.join(self._path)}"
                ) from None
        if isinstance(key, int) and key < 0:
            try:
                return Header(self, self._catalog.values()[key])
            except IndexError:
                raise IndexError(
                    f"db[{key}] asks for the {-key}th newest run, but there are only "
                    f"{len(self._catalog)}"
                ) from None
        return Header(self, self._catalog[key])

    def _slice(self, key: slice) -> list[Header]:
        if key.start is not None and key.start > -1:
            raise ValueError(
                f"slice.start must be negative. You gave me key={key} The offending part is "
                f"key.start={key.start}"
            )
        if key.stop is not None and key.stop > 0:
            raise ValueError(
                f"slice.stop must be <= 0. You gave me key={key}. The offending part is "
                f"key.stop = {key.stop}"
            )
        if key.start is None:
            raise ValueError(
                "slice.start cannot be None because we do not support slicing infinitely into "
                "the past; the size of the result is non-deterministic and could become too "
                "large."
            )
        indices = list(reversed(range(key.start, key.stop or 0, key.step or 1)))
        if not indices:
            return []
        offsets = [-i - 1 for i in indices]  # positions counted from the newest run
        newest = self._catalog.sort(("start.time", -1)).values()
        page = newest[min(offsets) : max(offsets) + 1]
        if len(page) <= max(offsets) - min(offsets):
            raise IndexError(f"db[{key.start}:...] reaches past the oldest run")
        return [Header(self, page[o - min(offsets)]) for o in offsets]

    def __call__(self, text_search: str | None = None, **kwargs: Any) -> Results:
        """Runs whose start documents match, newest first: ``db(plan_name='scan',
        since='2024-03-01', until='2024-03-02', num_points={'$gte': 10})``; ``data_key=``
        keeps runs with that field; ``text_search=`` matches words anywhere."""
        data_key = kwargs.pop("data_key", None)
        queries = to_queries(self.filters, self.timezone) if self.filters else []
        if text_search:
            kwargs["text_search"] = text_search
        queries += to_queries(kwargs, self.timezone)
        catalog = self._catalog
        for query in queries:
            catalog = catalog.search(query)
        return Results(self, catalog, data_key)

    def alias(self, key: str, **query: Any) -> None:
        """``db.alias('cal', purpose='calibration')``; then ``db.cal`` is ``db(purpose=...)``."""
        if hasattr(self, key) and key not in self.aliases:
            raise ValueError(f"'{key}' is not a legal alias.")
        self.aliases[key] = query

    def dynamic_alias(self, key: str, func: Callable[[], dict]) -> None:
        """Like :meth:`alias`, with the query made by ``func()`` at each use."""
        if hasattr(self, key) and key not in self.aliases:
            raise ValueError(f"'{key}' is not a legal alias.")
        self.aliases[key] = func

    def add_filter(self, **kwargs: Any) -> None:
        """AND ``kwargs`` into every later search (``db.filters.update(kwargs)``)."""
        self.filters.update(**kwargs)

    def clear_filters(self, **kwargs: Any) -> None:
        self.filters.clear()

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            query = self.__dict__["aliases"][key]
        except KeyError:
            raise AttributeError(key) from None
        return self(**(query() if callable(query) else query))

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def get_fields(header: Header, name: str | None = None) -> set[str]:
        return header.fields(ALL if name is None else name)

    def get_documents(
        self,
        headers: Any,
        stream_name: Any = ALL,
        fields: list[str] | None = None,
        fill: bool = False,
        handler_registry: Any = None,
    ) -> Iterator[tuple[str, dict]]:
        _no_registry(handler_registry)
        for header in _ensure_list(headers):
            yield from header.documents(stream_name, fields, fill)

    def get_events(
        self,
        headers: Any,
        stream_name: str = "primary",
        fields: list[str] | None = None,
        fill: bool = False,
        handler_registry: Any = None,
    ) -> Iterator[dict]:
        _no_registry(handler_registry)
        for header in _ensure_list(headers):
            yield from header.events(stream_name, fields, fill)

    def get_table(
        self,
        headers: Any,
        stream_name: str = "primary",
        fields: list[str] | None = None,
        fill: bool = False,
        handler_registry: Any = None,
        convert_times: bool = True,
        timezone: str | None = None,
        localize_times: bool = True,
    ) -> pd.DataFrame:
        _no_registry(handler_registry)
        frames = [
            h.table(stream_name, fields, fill, timezone, convert_times, localize_times)
            for h in _ensure_list(headers)
        ]
        frames = [f for f in frames if len(f.columns)]
        if not frames:
            empty = pd.DataFrame()
            empty.index.name = "seq_num"
            return empty
        result = pd.concat(frames) if len(frames) > 1 else frames[0]
        result.index.name = "seq_num"
        return result

    def get_images(
        self, headers: Any, name: str, stream_name: str = "primary", handler_registry: Any = None
    ) -> Images:
        """The frames of detector field ``name``, read one at a time when indexed."""
        if handler_registry is not None:
            raise NotImplementedError(
                "The handler_registry parameter is no longer supported and must be None."
            )
        arrays = []
        for header in _ensure_list(headers):
            stream = header._stream(stream_name)
            if stream is None:
                raise KeyError(f"run {header.uid[:8]} has no stream {stream_name!r}")
            arrays.append(stream["data"][name])
        return Images(arrays)

    def restream(
        self, headers: Any, fields: list[str] | None = None, fill: bool = False
    ) -> Iterator[tuple[str, dict]]:
        """Every document of the runs, as the RunEngine emitted them (pages unpacked)."""
        yield from self.get_documents(headers, fields=fields, fill=fill)

    stream = restream

    def process(
        self,
        headers: Any,
        func: Callable[[str, dict], Any],
        fields: list[str] | None = None,
        fill: bool = False,
    ) -> None:
        """Call ``func(name, doc)`` for every document of the runs."""
        for name, doc in self.get_documents(headers, fields=fields, fill=fill):
            func(name, doc)

    # -- writing ---------------------------------------------------------------------------

    def insert(self, name: str, doc: dict) -> None:
        """Write one document through the server (``RE.subscribe(db.insert)`` works); the
        legacy ``bulk_events`` and ``bulk_datum`` are taken too, with a warning."""
        warnings.warn(
            "The method Broker.insert may be removed in a future release of databroker.",
            PendingDeprecationWarning,
            stacklevel=2,
        )
        self._insert_pairs(legacy_documents(name, doc))

    def _insert_pairs(self, pairs: list[tuple[str, dict]]) -> None:
        transport = self._transport()
        response = transport.http.post(
            transport.url("documents", self._path),
            content=packing.packb([list(p) for p in pairs]),
            headers={"Content-Type": "application/x-msgpack"},
        )
        if response.status_code >= 400:
            raise ValueError(_refusal(pairs[0][0] if len(pairs) == 1 else "posted", response))
        if self._client is None or any(n == "stop" for n, _ in pairs):
            self._client = None  # a new catalog becomes visible; a stopped run refreshes

    def export(
        self, headers: Any, db: Broker, new_root: str | None = None, copy_kwargs: Any = None
    ) -> list:
        """Insert every document of ``headers`` into the Broker ``db``."""
        return export(self, _ensure_list(headers), db, new_root)

    def export_size(self, headers: Any) -> float:
        raise NotImplementedError(
            "export_size sums the sizes of detector files, which lie on the bluebroker "
            "server's side; each external array's data_sources (in its /metadata) lists them"
        )

    def _transport(self) -> Any:
        from bluebroker.client import _transport

        base = self._uri.split("/api/v1")[0].rstrip("/")
        return _transport(f"{base}/api/v1", self._api_key, 60.0)

    def fill_event(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_NO_LONGER)

    def fill_events(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_NO_LONGER)

    def stats(self) -> dict[str, Any]:
        """Where this broker points and how many runs it holds."""
        return {
            "uri": self._uri,
            "catalog": "/".join(self._path),
            "runs": len(self._catalog),
        }

    def __repr__(self) -> str:
        name = f" {self._name!r}" if self._name else ""
        return f"<Broker{name} {self._uri} /{'/'.join(self._path)}>"


def temp() -> Broker:
    """A Broker over a throwaway embedded bluebroker (temporary SQLite, in-process server):
    tests and notebooks need no set-up. Its data vanish when the process exits."""
    from bluebroker.embedded import EmbeddedServer

    server = EmbeddedServer(catalog_paths=("temp",))
    config = {"uri": server.uri, "catalog": "temp", "description": "a temporary catalog"}
    return Broker(server.uri, "temp", name="temp", config=config, server=server)
