"""A legacy MongoDB database served in place: ``--mount NAME=mongodb://host/db[?assets=...]``.

``MongoCatalogSource`` holds the connection and is what ``Catalog.mount`` serves at
``/NAME``: its ``node(parts)`` gives a catalog of runs (``runs.py``) whose runs, streams,
tables and arrays (``streams.py``) have the same shapes as the SQL catalog's, so every route,
client and facade sees one tree. Nothing is copied or cached between requests: each request
reads MongoDB, so runs that an old acquisition system still writes there appear as they come
(a Mongo source sends no change notices: the live route says so).

The mount spec: ``mongodb://[user:password@]host[:port]/METADATASTORE_DB[?options]`` (or
``mongodb+srv://``), where the options are MongoDB's own plus two of ours, removed before
the URI reaches pymongo:

- ``assets=NAME`` the asset registry database on the same server (default: the
  metadatastore database itself), or ``assets=mongodb://...`` (percent-encoded) elsewhere;
- ``root_map=OLD=NEW`` (repeatable, percent-encoded) where resource roots moved, applied
  over serve's own ``--root-map``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from ..errors import CatalogError, SourceUnavailable
from ..tree import split_path
from .documents import MongoSourceError, _pymongo
from .reader import MongoSource

if TYPE_CHECKING:
    from ..node import Node
    from ..tree import Catalog

SCHEMES = ("mongodb://", "mongodb+srv://")
OURS = ("assets", "root_map")
TIMEOUT_MS = 5_000  # how long start and each request wait for an unreachable MongoDB
TEXT_INDEX_MAX_AGE = 60.0
KEPT = 20_000  # facts about events kept between requests (first events: mostly small)
PASSWORD = re.compile(r"(://[^/@:\s]*:)([^@/\s]+)(@)")


def shown(uri: str) -> str:
    """``uri`` without its password, for messages and logs."""
    return PASSWORD.sub(r"\1***\3", uri)


def parse_spec(spec: str, root_map: dict[str, str] | None = None) -> dict[str, Any]:
    """``{'uri', 'assets_uri', 'root_map'}`` from a mount spec (see the module docstring);
    a spec that cannot be right is a one-line MongoSourceError."""
    if not isinstance(spec, str) or not spec.startswith(SCHEMES):
        raise MongoSourceError(f"a MongoDB mount is mongodb://host/DATABASE, not {spec!r:.100}")
    base, _, query = spec.partition("?")
    rest = base.split("://", 1)[1]
    host, slash, database = rest.partition("/")
    if not host or not slash or not database.strip("/") or "/" in database.strip("/"):
        raise MongoSourceError(
            f"{shown(spec)!r:.120} must name the metadatastore database, e.g. "
            "mongodb://localhost:27017/metadatastore?assets=assets"
        )
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise MongoSourceError(f"the options of {shown(spec)!r:.120} do not parse") from None
    theirs = [(k, v) for k, v in pairs if k not in OURS]
    uri = base + ("?" + urlencode(theirs) if theirs else "")
    moved = dict(root_map or {})
    assets_uri = None
    for key, value in pairs:
        if key == "assets":
            if not value or assets_uri is not None:
                raise MongoSourceError("assets= takes one database name or one mongodb:// URI")
            if value.startswith(SCHEMES):
                assets_uri = value
            elif "/" in value or "?" in value:
                raise MongoSourceError(
                    f"assets={value!r:.80} is neither a database name nor a mongodb:// URI"
                )
            else:
                assets_uri = base.rsplit("/", 1)[0] + "/" + value + (
                    "?" + urlencode(theirs) if theirs else ""
                )
        elif key == "root_map":
            old, sep, new = value.partition("=")
            if not sep or not old or not new:
                raise MongoSourceError(f"root_map= takes OLD=NEW, got {value!r:.100}")
            moved[old] = new
    return {"uri": uri, "assets_uri": assets_uri, "root_map": moved}


class MongoCatalogSource:
    """A mongo_normalized database pair served at ``/name`` of ``catalog`` (whose data roots
    decide which detector files may be opened). Opening it checks that MongoDB answers and
    that the database is a metadatastore: a wrong spec fails at start, in one line."""

    live = False  # no change notices: see the module docstring

    def __init__(
        self,
        catalog: Catalog,
        spec: str,
        name: str,
        timeout_ms: int = TIMEOUT_MS,
    ) -> None:
        parts = parse_spec(spec, catalog.root_map)
        self.catalog = catalog
        self.name = name
        self.path: tuple[str, ...] = (name,)
        self.data_roots = catalog.data_roots
        self.root_map: dict[str, str] = {}  # resource roots are rewritten by the reader
        names = (f"--mount {name}", f"--mount {name}'s assets=")
        self.reader = MongoSource(
            parts["uri"],
            parts["assets_uri"],
            root_map=parts["root_map"],
            names=names,
            timeout_ms=timeout_ms,
        )
        self.shown = shown(parts["uri"])
        self.mds = self.reader.mds
        self.assets = self.reader.assets
        self._text_index: tuple[float, bool] | None = None
        # Facts about events that cannot change once true, kept between requests (streams.py):
        # "numbered" (descriptor uid, count) -> events numbered 1..count; "count" descriptor
        # uid -> its events, once its run has stopped; "first" descriptor uid -> first event.
        self._kept: dict[tuple[str, Any], Any] = {}
        self._lock = threading.Lock()

    def recall(self, kind: str, key: Any) -> Any:
        """What ``remember`` kept for ``(kind, key)``, or None."""
        return self._kept.get((kind, key))

    def remember(self, kind: str, key: Any, value: Any) -> None:
        with self._lock:  # request threads share the source; the oldest facts go first
            if len(self._kept) >= KEPT:
                self._kept.pop(next(iter(self._kept)), None)
            self._kept[(kind, key)] = value

    def __repr__(self) -> str:
        return f"<MongoCatalogSource {self.shown} at /{self.name}>"

    def close(self) -> None:
        self.reader.close()

    def describe(self) -> str:
        """One line for the operator: how many runs, and that nothing is live."""
        with self.guard():
            runs = self.col("run_start").estimated_document_count()
        assets = "" if self.assets is self.mds else f", assets in {self.assets.name!r}"
        return f"about {runs} runs{assets}; read at each request, no change notices"

    def col(self, name: str) -> Any:
        """A collection (``run_start``, ``event``, ``datum``...)."""
        return self.reader._col[name]

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """MongoDB's failures as the catalog's errors: unreachable is SourceUnavailable (503,
        try again), a query MongoDB refuses a QueryError (400)."""
        pymongo = _pymongo()
        try:
            yield
        except (pymongo.errors.ConnectionFailure, pymongo.errors.ServerSelectionTimeoutError):
            raise SourceUnavailable(
                f"the MongoDB server behind /{self.name} is not answering; try again later"
            ) from None
        except pymongo.errors.OperationFailure as err:
            from bluebroker.queries import QueryError

            why = (err.details or {}).get("errmsg") or str(err)
            raise QueryError(f"MongoDB refused this read of /{self.name}: {why:.300}") from None

    def has_text_index(self) -> bool:
        """Whether run_start has a text index ($text works), remembered for a minute."""
        now = time.monotonic()
        if self._text_index is None or now - self._text_index[0] > TEXT_INDEX_MAX_AGE:
            with self.guard():
                info = self.col("run_start").index_information()
            found = any(
                any(kind == "text" for _, kind in index.get("key", ())) for index in info.values()
            )
            self._text_index = (now, found)
        return self._text_index[1]

    def node(self, parts: str | tuple[str, ...]) -> Node:
        """The node at ``parts`` below the mount: the catalog of runs, a run, and so on."""
        from .runs import MongoRunCatalog

        node: Any = MongoRunCatalog(self)
        for part in split_path(parts):
            node = node[part]
        return node


def check_mongo(name: str, spec: str) -> None:
    """Refuse in one line, before the catalog is opened, a spec that cannot be right, a
    MongoDB that does not answer, or a database that is not a metadatastore."""
    parts = parse_spec(spec)
    names = (f"--mount {name}", f"--mount {name}'s assets=")
    MongoSource(parts["uri"], parts["assets_uri"], names=names, timeout_ms=TIMEOUT_MS).close()


def mount_mongo(catalog: Catalog, name: str, spec: str) -> MongoCatalogSource:
    """Open the Mongo source of ``spec`` and serve it at ``/name`` of ``catalog``."""
    source = MongoCatalogSource(catalog, spec, name)
    try:
        catalog.mount(name, source)
    except CatalogError:
        source.close()
        raise
    return source
