"""The root of the tree: catalog paths like ``bmm/raw`` become nested containers of runs."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from . import access, roots
from .changes import ChangeFeed
from .engine import create_engine
from .errors import CatalogError, NotFound
from .node import Container, Node
from .run import Run, Stream
from .runs import RunCatalog
from .schema import catalogs, check_version, current_version, runs, streams, upgrade

PATHS_MAX_AGE = 2.0
SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
MAX_CATALOG_DEPTH = 8
MAX_SEGMENT = 64


def split_path(path: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``'bmm/raw/'`` -> ``('bmm', 'raw')``. A path with NUL names nothing (no catalog, uid or
    field can hold one) and PostgreSQL refuses it in a query: NotFound before any query."""
    if isinstance(path, tuple | list):
        return tuple(path)
    if "\x00" in path:
        raise NotFound(f"no node at {path!r:.200}: paths cannot contain NUL characters")
    return tuple(p for p in path.strip("/").split("/") if p)


def check_catalog_path(path: str) -> str:
    """A catalog path is one to ``MAX_CATALOG_DEPTH`` segments of letters, digits, '_', '.',
    '-', each at most ``MAX_SEGMENT`` long: every path is listed under the root, so one absurd
    path (a hundred segments) would make every root listing absurd too."""
    parts = split_path(path)
    if not parts or not all(SEGMENT.fullmatch(p) for p in parts):
        raise CatalogError(
            f"invalid catalog path {path!r:.200}: use segments of letters, digits, '_', '.', "
            "'-' separated by '/', e.g. 'bmm/raw'"
        )
    if len(parts) > MAX_CATALOG_DEPTH or any(len(p) > MAX_SEGMENT for p in parts):
        raise CatalogError(
            f"invalid catalog path {path[:80]!r}...: at most {MAX_CATALOG_DEPTH} segments of at "
            f"most {MAX_SEGMENT} characters, e.g. 'bmm/raw'"
        )
    return "/".join(parts)


class Catalog(Container):
    """The whole catalog database. ``cat['bmm/raw']`` is a catalog of runs; deeper paths walk
    into runs, streams, tables and arrays."""

    def __init__(
        self,
        uri: str,
        root_map: dict[str, str] | None = None,
        data_roots: Iterable[str | os.PathLike] | None = None,
    ) -> None:
        super().__init__(())
        self.uri = uri
        # The folders whose files may be opened, as real paths (see roots.py for the default).
        self.data_roots: tuple[str, ...] = roots.configure(uri, data_roots)
        self.engine = create_engine(uri)
        self.dialect = self.engine.dialect.name
        self.root_map = dict(root_map or {})
        self._paths: tuple[float, dict[str, int]] | None = None
        self._changes: ChangeFeed | None = None
        self._write_engine: sa.Engine | None = None
        # Other sources served in the same tree (bluebroker.directory): name -> an object
        # whose node(parts) gives its nodes; the name '' serves one in place of the root.
        self.mounts: dict[str, Any] = {}

    def mount(self, name: str, source: Any) -> None:
        """Serve ``source`` (e.g. a ``DirectorySource``) at ``/name`` beside the runs."""
        taken = any(p == name or p.startswith(name + "/") for p in self.catalog_paths(0))
        if name and (taken or not SEGMENT.fullmatch(name)):
            raise CatalogError(f"cannot mount at {name!r}: not a free, plain path segment")
        self.mounts[name] = source

    @property
    def write_engine(self) -> sa.Engine:
        """The engine writers use: on PostgreSQL a pool of its own without the checkout ping,
        whose connections wait for the writer's own BEGIN (a live event is a transaction,
        and the ping and psycopg's lone BEGIN were two of its round trips). Only
        ``WriteSession`` (catalog/writes.py) should use it: it sends that BEGIN."""
        if self.dialect != "postgresql":
            return self.engine
        if self._write_engine is None:
            self._write_engine = create_engine(self.uri, pre_ping=False, own_begin=True)
        return self._write_engine

    @property
    def changes(self) -> ChangeFeed:
        """Committed changes of this database, for live subscribers (see changes.py)."""
        if self._changes is None:
            self._changes = ChangeFeed(self.engine)
        return self._changes

    def connect(self) -> sa.Connection:
        return self.engine.connect()

    def close(self) -> None:
        if self._changes is not None:
            self._changes.close()
        if self._write_engine is not None:
            self._write_engine.dispose()
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- catalog paths -------------------------------------------------------------------

    def catalog_paths(self, max_age: float = PATHS_MAX_AGE) -> dict[str, int]:
        """Every catalog path and its id (remembered for ``max_age`` seconds: paths are
        created rarely and looked up on every request)."""
        now = time.monotonic()
        if self._paths is None or now - self._paths[0] > max_age:
            with self.connect() as conn:
                paths = dict(conn.execute(sa.select(catalogs.c.path, catalogs.c.id)).all())
            self._paths = (now, paths)
        return self._paths[1]

    def catalog_metadata(self, catalog_id: int) -> dict[str, Any]:
        with self.connect() as conn:
            return conn.execute(
                sa.select(catalogs.c.metadata).where(catalogs.c.id == catalog_id)
            ).scalar_one()

    def create_catalog(self, path: str, metadata: dict | None = None) -> RunCatalog:
        """Create (or return) the catalog of runs at ``path``."""
        from .writes import WriteSession

        path = check_catalog_path(path)
        with self.engine.begin() as conn:
            catalog_id = WriteSession(conn).catalog_id(path)
            if metadata:
                conn.execute(
                    sa.update(catalogs).where(catalogs.c.id == catalog_id).values(metadata=metadata)
                )
        self._paths = None
        return RunCatalog(self, split_path(path), catalog_id)

    # -- runs ----------------------------------------------------------------------------

    @staticmethod
    def run_columns() -> list:
        return [runs.c.id, runs.c.uid, runs.c.start, runs.c.stop, runs.c.summary]

    def make_run(self, path: tuple[str, ...], row: sa.Row) -> Run:
        return Run(self, (*path, row.uid), row)

    # -- walking -------------------------------------------------------------------------

    def _children(self, prefix: tuple[str, ...]) -> list[str]:
        names: dict[str, None] = {}
        for path in self.catalog_paths():
            parts = split_path(path)
            if len(parts) > len(prefix) and parts[: len(prefix)] == prefix:
                names[parts[len(prefix)]] = None
        if not prefix:
            names.update(dict.fromkeys(n for n in self.mounts if n))
        return sorted(names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._children(()))

    def __len__(self) -> int:
        return len(self._children(()))

    def __getitem__(self, key: str) -> Node:
        return self.node(key)

    def node(self, path: str | tuple[str, ...]) -> Node:
        """The node at a '/'-separated path (or a tuple of segments)."""
        parts = split_path(path)
        if self.mounts and ((parts and parts[0] in self.mounts) or "" in self.mounts):
            name = parts[0] if parts and parts[0] in self.mounts else ""
            return self.mounts[name].node(parts[1:] if name else parts)
        paths = self.catalog_paths()
        if parts and not any(p == parts[0] or p.startswith(parts[0] + "/") for p in paths):
            paths = self.catalog_paths(max_age=0)  # perhaps created a moment ago elsewhere
        node: Any = self
        i = 0
        while i < len(parts):
            here = parts[: i + 1]
            joined = "/".join(here)
            if isinstance(node, RunCatalog) and not node.queries and i + 1 < len(parts):
                stream = self._stream_at(node, parts[i], parts[i + 1])
                if stream is not None:  # run and stream in one query: the common deep path
                    node, i = stream, i + 2
                    continue
            if isinstance(node, Namespace | Catalog):
                if joined in paths:
                    node = RunCatalog(self, here, paths[joined])
                elif self._children(here):
                    node = Namespace(self, here)
                else:
                    raise NotFound(f"no catalog at /{joined}; catalogs: {sorted(paths) or 'none'}")
            else:
                try:
                    node = node[parts[i]]
                except (KeyError, IndexError) as err:
                    raise NotFound(f"/{joined} not found: {err}") from err
            i += 1
        return node

    def _stream_at(self, runs_node: RunCatalog, uid: str, name: str) -> Stream | None:
        """The stream ``name`` of run ``uid`` (a full uid), or None to take the long way."""
        stmt = (
            sa.select(*self.run_columns(), streams.c.id.label("stream_id"))
            .join(streams, streams.c.run_id == runs.c.id)
            .where(
                runs.c.catalog_id == runs_node.catalog_id, runs.c.uid == uid, streams.c.name == name
            )
            .where(*access.run_condition("/".join(runs_node.path), self.dialect))
        )
        with self.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        run = self.make_run(runs_node.path, row)
        return Stream(run, (*run.path, name), row.stream_id)


class Namespace(Container):
    """A path segment that groups catalogs, like ``bmm`` above ``bmm/raw``."""

    def __init__(self, root: Catalog, path: tuple[str, ...]) -> None:
        super().__init__(path)
        self.root = root

    def __iter__(self) -> Iterator[str]:
        return iter(self.root._children(self.path))

    def __len__(self) -> int:
        return len(self.root._children(self.path))

    def __getitem__(self, key: str) -> Node:
        return self.root.node((*self.path, *split_path(key)))


def open_catalog(
    uri: str,
    *,
    root_map: dict[str, str] | None = None,
    create: bool | None = None,
    data_roots: Iterable[str | os.PathLike] | None = None,
) -> Catalog:
    """Open the catalog at ``uri`` (``sqlite:///path/catalog.db`` or ``postgresql://...``).

    Detector files are opened (and documents naming them accepted) only inside
    ``data_roots`` (existing folders; ``[]`` allows none); when it is None, a SQLite catalog's
    own folder, and none on PostgreSQL (see roots.py).

    A new SQLite file is initialized on first use, because the embedded default should need no
    setup step. A PostgreSQL database is initialized only with ``create=True`` (or by
    ``bluebroker catalog init``), so a typo in a URI does not quietly create a new catalog on a
    facility server. An out-of-date schema is an error that names the upgrade command.
    """
    cat = Catalog(uri, root_map=root_map, data_roots=data_roots)
    if create is None:
        create = cat.dialect == "sqlite"
    with cat.engine.begin() as conn:
        if create and current_version(conn) is None:
            upgrade(conn)
        check_version(conn, uri)
    return cat
