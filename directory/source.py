"""A served folder: its index, its readers, and the nodes it serves."""

from __future__ import annotations

import os
import stat
from typing import Any, BinaryIO

import numpy as np
import sqlalchemy as sa

from bluebroker.catalog import Catalog, CatalogError, ExternalDataError, NotFound, OutsideDataRoots
from bluebroker.catalog.errors import ExternalDataMissing
from bluebroker.catalog.tree import split_path

from .index import ensure_tables, nodes, source_id
from .readers import Reader, Readers
from .readers_hdf5 import RefusedLink
from .register import Report, register
from .walk import inside


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

    def __repr__(self) -> str:
        return f"<DirectorySource {self.root} at /{self.name}>"

    def register(self, progress: bool = False) -> Report:
        return register(self, progress)

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
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(nodes).where(nodes.c.source_id == self.id, nodes.c.path == rel)
            ).first()

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
