"""A served folder: its index, its readers, and the nodes it serves."""

from __future__ import annotations

import os
import stat
import threading
import time
from typing import Any, BinaryIO

import numpy as np
import sqlalchemy as sa

from bluebroker.catalog import Catalog, CatalogError, ExternalDataError, NotFound, OutsideDataRoots
from bluebroker.catalog.errors import ExternalDataMissing
from bluebroker.catalog.tree import split_path

from .index import SCOPE, ensure_tables, nodes, source_id
from .readers import Reader, Readers
from .readers_hdf5 import RefusedLink
from .register import Report, register
from .walk import inside

# How long an index row looked up by path is reused. Changes announced by a registration
# (this process's or another's, through the catalog's change feed) drop the cached rows at
# once; this bounds how long an unannounced change of the index could go unseen.
ROW_TTL = 2.0
ROW_CACHE_MAX = 4096  # paths remembered; past this the cache starts afresh
_MISSING = object()


class DirectorySource:
    """The folder ``root`` served at ``name`` (``''``: the server's root) of ``catalog``,
    whose database keeps the index. ``register()`` brings the index up to date."""

    def __init__(
        self,
        catalog: Catalog,
        root: str | os.PathLike,
        name: str = "",
        readers: dict[str, Reader] | None = None,
    ) -> None:
        real = os.path.realpath(os.fspath(root))
        if not os.path.isdir(real):
            raise CatalogError(f"{os.fspath(root)!r} is not a folder; serve an existing folder")
        self.catalog = catalog
        self.engine = catalog.engine
        self.root = real
        self.name = name
        self.prefix: tuple[str, ...] = (name,) if name else ()
        self.readers = Readers(readers)
        ensure_tables(self.engine)
        self.id = source_id(self.engine, real)
        # path -> (time looked up, row or None): a lookup costs a connection and a query,
        # about a quarter of a small read's time on the server (benchmarks/README.md)
        self._rows: dict[str, tuple[float, Any]] = {}
        self._following = False
        self._follow_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<DirectorySource {self.root} at /{self.name}>"

    def register(self, progress: bool = False) -> Report:
        try:
            return register(self, progress)
        finally:
            self.forget()

    def forget(self) -> None:
        """Drop the index rows remembered by path (the index changed)."""
        self._rows = {}

    def _on_changes(self, found: list[Any] | None) -> None:
        """A change-feed listener: notices about this folder (or lost notices) make the
        remembered rows stale."""
        if found is None or any(c.scope == SCOPE and c.node_id == self.id for c in found):
            self.forget()

    def _follow(self) -> None:
        with self._follow_lock:
            if not self._following:
                self.catalog.changes.add_listener(self._on_changes)
                self._following = True

    # -- files ---------------------------------------------------------------------------

    def real(self, rel: str) -> str:
        """The real path of ``rel`` (from the served folder), refused outside it."""
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise OutsideDataRoots(f"{rel!r:.200} is not a path inside the served directory")
        real = os.path.realpath(os.path.join(self.root, *parts))
        if not inside(self.root, real):
            raise OutsideDataRoots(f"{rel!r:.200} leads outside the served directory; refused")
        return real

    def open_file(self, rel: str) -> BinaryIO:
        """The file ``rel`` opened for reading, refused when it (or, by then, a link put in
        its place) leads outside the served folder or is not a regular file."""
        real = self.real(rel)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ExternalDataMissing(f"{rel!r:.200} is gone from the served directory") from None
        except OSError as err:
            raise OutsideDataRoots(f"{rel!r:.200} cannot be opened: {err.strerror}") from None
        f = os.fdopen(fd, "rb")
        try:
            opened = f"/proc/self/fd/{fd}"  # what was opened, after any swap since real()
            where = os.path.realpath(opened) if os.path.exists(opened) else real
            if not inside(self.root, where):
                raise OutsideDataRoots(f"{rel!r:.200} leads outside the served directory")
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotFound(f"{rel!r:.200} is not a file")
        except BaseException:
            f.close()
            raise
        return f

    def _files(self, row: Any) -> list[str]:
        files = [self.real(f) for f in row.files]
        for f in files:
            if not os.path.exists(f):
                raise ExternalDataMissing(f"{row.unit!r} is gone from the served directory")
        return files

    def read_array(self, row: Any, index: tuple) -> np.ndarray:
        files = self._files(row)
        try:
            return self.readers[row.reader].read_array(files, row.inner, index)
        except (IndexError, TypeError):
            raise
        except RefusedLink as err:
            raise OutsideDataRoots(f"{row.path}: {err}") from None
        except Exception as err:
            raise ExternalDataError(
                f"cannot read {row.path!r}: {type(err).__name__}: {err}"
            ) from None

    def read_table(self, row: Any, columns: list[str] | None) -> Any:
        files = self._files(row)
        try:
            return self.readers[row.reader].read_table(files, row.inner, columns)
        except Exception as err:
            raise ExternalDataError(
                f"cannot read {row.path!r}: {type(err).__name__}: {err}"
            ) from None

    # -- nodes ---------------------------------------------------------------------------

    def row(self, rel: str) -> Any:
        """The index row at ``rel``, or None; remembered for ``ROW_TTL`` seconds unless a
        change notice about this folder comes first."""
        now = time.monotonic()
        hit = self._rows.get(rel, _MISSING)
        if hit is not _MISSING and now - hit[0] < ROW_TTL:  # type: ignore[index]
            return hit[1]  # type: ignore[index]
        if not self._following:
            self._follow()
        rows = self._rows  # forget() replaces it: a row read before then lands in the old one
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(nodes).where(nodes.c.source_id == self.id, nodes.c.path == rel)
            ).first()
        if len(rows) >= ROW_CACHE_MAX:
            rows.clear()
        rows[rel] = (now, found)
        return found

    def node(self, parts: str | tuple[str, ...]) -> Any:
        """The node at ``parts`` below the served folder."""
        from .nodes import DirectoryContainer, make_node

        parts = split_path(parts)
        if not parts:
            return DirectoryContainer(self, None)
        rel = "/".join(parts)
        found = self.row(rel) if not any(p in (".", "..") for p in parts) else None
        if found is None and len(parts) > 1:  # a table's column: /files/scan.csv/energy
            table = self.row("/".join(parts[:-1]))
            if table is not None and table.family == "table":
                return make_node(self, table)[parts[-1]]
        if found is None:
            shown = "/".join((*self.prefix, *parts))
            raise NotFound(f"no file or node at /{shown:.300} in the served directory")
        return make_node(self, found)

    def path_of(self, rel: str) -> tuple[str, ...]:
        return (*self.prefix, *(rel.split("/") if rel else ()))
