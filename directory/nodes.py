"""The nodes a served folder yields, built from index rows: folders and groups as
containers, datasets and images as arrays, tabular files as tables, any other file as its
bytes. They satisfy the catalog's node interfaces, so every route serves them unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import sqlalchemy as sa

from bluebroker import queries as q
from bluebroker.catalog import ArrayNode, Container, NotFound, TableNode
from bluebroker.catalog.columns import to_array

from . import query
from .index import SCOPE, nodes
from .readers import normalize_index

if TYPE_CHECKING:
    from .source import DirectorySource

SPECS = {
    "directory": ("Directory",),
    "hdf5": ("HDF5",),
    "nexus": ("HDF5", "NeXus"),
    "zarr-group": ("Zarr",),
    "zarr-array": ("Zarr",),
    "tiff-sequence": ("TIFFSequence",),
    "file": ("File",),
    "error": ("File", "Unreadable"),
    "refused": ("Unreadable",),
}


# Kinds whose node is not a file of its own: folders, Zarr stores, links refused.
NOT_FILES = frozenset({"directory", "zarr-group", "zarr-array", "refused"})


def make_node(source: DirectorySource, row: Any) -> Any:
    if row.family == "container":
        return DirectoryContainer(source, row)
    if row.family == "table":
        return FileTable(source, row)
    if row.kind in ("file", "error"):
        return RawFile(source, row)
    return FileArray(source, row)


class _RowNode:
    """What every node built from an index row shares."""

    source: DirectorySource
    row: Any

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.row.metadata)

    @property
    def specs(self) -> tuple[str, ...]:  # type: ignore[override]
        return SPECS.get(self.row.kind, ())

    def download_name(self) -> str | None:
        """The file's name when this node is one whole file (an HDF5 file, an image, a
        table, any other file), else None; ``/asset/bytes`` streams such a file as it lies.
        From the index alone: listings ask it of every node."""
        row = self.row
        if row is None or row.inner or row.files != [row.path] or row.kind in NOT_FILES:
            return None
        if row.kind == "error" and row.family != "array":  # a Zarr store that failed
            return None
        return row.name

    def open_download(self) -> BinaryIO:
        """The whole file, opened (inside the served folder, a regular file)."""
        if self.download_name() is None:
            raise NotFound(f"/{'/'.join(self.path):.300} is not one whole file")
        return self.source.open_file(self.row.path)


class DirectoryContainer(_RowNode, Container):
    """A folder, an HDF5 file or group, a Zarr group: its children come from the index,
    in name order. ``search`` looks in the whole subtree below it (a data lake is searched
    without knowing which folder holds the file; nothing outside the subtree is found): a
    match deeper than a child is keyed by its path from here, ``'scans/a.nxs/entry'``."""

    def __init__(
        self,
        source: DirectorySource,
        row: Any,
        queries: tuple[q.Query, ...] = (),
        sort: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.rel = row.path if row is not None else ""
        super().__init__(source.path_of(self.rel))
        self.source = source
        self.row = row
        self.queries = queries
        self.sort_keys = sort

    @property
    def metadata(self) -> dict[str, Any]:
        return {} if self.row is None else dict(self.row.metadata)

    @property
    def specs(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("Directory",) if self.row is None else SPECS.get(self.row.kind, ())

    @property
    def live_scope(self) -> tuple[str, int]:
        """Whose change sequence a live subscriber of this container follows: the folder's
        (files added, changed, removed anywhere in it; each notice names its path)."""
        return (SCOPE, self.source.id)

    def search(self, query: q.Query) -> DirectoryContainer:
        query_dialect = self.source.catalog.dialect
        from .query import condition

        condition(query, query_dialect)  # fail now, not at first read
        return DirectoryContainer(self.source, self.row, (*self.queries, query), self.sort_keys)

    def sort(self, *keys: tuple[str, int]) -> DirectoryContainer:
        query.order_by(keys, self.source.catalog.dialect)
        return DirectoryContainer(self.source, self.row, self.queries, tuple(keys))

    def _where(self) -> list[sa.ColumnElement]:
        dialect = self.source.catalog.dialect
        return [
            nodes.c.source_id == self.source.id,
            self._below() if self.queries else nodes.c.parent == self.rel,
            *(query.condition(qq, dialect) for qq in self.queries),
        ]

    def _below(self) -> sa.ColumnElement:
        """Every node of the subtree: paths that begin with this one's and a '/' (compared
        as text, not with LIKE, so '_' and '%' in names are plain characters)."""
        if not self.rel:
            return sa.true()
        prefix = self.rel + "/"
        return sa.func.substr(nodes.c.path, 1, len(prefix)) == prefix

    def _key(self, path: str) -> str:
        """A node's key here: its path from this container."""
        return path[len(self.rel) + 1 :] if self.rel else path

    def _rows(self, offset: int = 0, limit: int | None = None, keys: bool = False) -> list[Any]:
        stmt = (
            sa.select(nodes.c.path if keys else nodes)
            .where(*self._where())
            .order_by(*query.order_by(self.sort_keys, self.source.catalog.dialect))
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.source.engine.connect() as conn:
            return list(conn.execute(stmt))

    def __len__(self) -> int:
        with self.source.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(nodes).where(*self._where())
            ).scalar_one()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_range())

    def keys_range(self, offset: int = 0, limit: int | None = None) -> list[str]:
        return [self._key(r.path) for r in self._rows(offset, limit, keys=True)]

    def items_range(self, offset: int = 0, limit: int | None = None) -> list[tuple[str, Any]]:
        return [(self._key(r.path), self._hit(r)) for r in self._rows(offset, limit)]

    def _hit(self, row: Any) -> Any:
        """The node of ``row``, seen from here: a match deeper than a child has its key as
        its last path segment, so it is listed (and linked) under the searched container."""
        node = make_node(self.source, row)
        key = self._key(row.path)
        if "/" in key:
            node.path = (*self.path, key)
        return node

    def __getitem__(self, key: str) -> Any:
        rel = f"{self.rel}/{key}" if self.rel else key
        node = self.source.node(rel)
        if self.queries:  # a match, or a node inside one
            parts = [p for p in key.split("/") if p]
            candidates = [
                "/".join(filter(None, (self.rel, *parts[: i + 1]))) for i in range(len(parts))
            ]
            with self.source.engine.connect() as conn:
                hit = conn.execute(
                    sa.select(nodes.c.id).where(*self._where(), nodes.c.path.in_(candidates))
                ).first()
            if hit is None:
                raise NotFound(f"{key!r:.200} does not match this search")
        return node


class FileArray(_RowNode, ArrayNode):
    """A dataset, an image, a sequence of images: read slice by slice by its reader."""

    def __init__(self, source: DirectorySource, row: Any) -> None:
        super().__init__(source.path_of(row.path))
        self.source = source
        self.row = row

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.row.structure["shape"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.row.structure["dtype"])

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.row.structure.get("dims") or (f"dim_{i}" for i in range(len(self.shape))))

    def read(self, index: Any = ()) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        return self.source.read_array(self.row, index)

    def as_seen_by_tiled(self) -> ArrayNode:
        """What Tiled's client is given: strings as fixed-length bytes (tiled_strings.py)."""
        from .tiled_strings import as_seen_by_tiled

        return as_seen_by_tiled(self)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return self.read((slice(start, stop),))


class RawFile(FileArray):
    """A file no reader knows (or could read), served as its bytes: ``node[:100]`` is its
    first 100 bytes, ``?format=octet-stream`` downloads it."""

    def read(self, index: Any = ()) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        (path,) = self.source._files(self.row)
        size = os.path.getsize(path)
        (part,), after = normalize_index(index, (size,))
        if isinstance(part, int):
            part = slice(part, part + 1)
            after = ()
            single = True
        else:
            single = False
        with open(path, "rb") as f:
            f.seek(part.start)
            data = np.frombuffer(f.read(max(part.stop - part.start, 0)), dtype=np.uint8)
        data = data[:: part.step or 1]
        if after:
            data = data[after]
        return data[0] if single else data


class FileTable(_RowNode, TableNode):
    """A CSV, TSV, XDI or Parquet file (its columns also arrays: ``table['energy']``)."""

    def __init__(self, source: DirectorySource, row: Any) -> None:
        super().__init__(source.path_of(row.path))
        self.source = source
        self.row = row

    @property
    def columns(self) -> list[str]:
        return list(self.row.structure["columns"])

    @property
    def internal_columns(self) -> list[str]:
        return self.columns

    def __len__(self) -> int:
        return int(self.row.structure["num_rows"])

    def read(self, columns: list[str] | None = None) -> Any:
        df = self.source.read_table(self.row, columns)
        df.columns = [str(c) for c in df.columns]
        return df

    def column_infos(self, rows: int | None = None) -> dict[str, tuple[ArrayNode, tuple]]:
        """Each column's node and (shape, dtype, dims) from the index, for size checks."""
        dtypes = self.row.structure.get("dtypes") or {}
        n = len(self)
        return {
            name: (
                TableColumn(self, name),
                ((n,), np.dtype(dtypes.get(name, "<f8")), ("dim_0",)),
            )
            for name in self.columns
        }

    def __getitem__(self, column: str) -> ArrayNode:
        if column not in self.columns:
            raise NotFound(f"no column {column!r:.100} here; columns: {self.columns[:50]}")
        return TableColumn(self, column)


class TableColumn(ArrayNode):
    """One column of a file's table."""

    def __init__(self, table: FileTable, column: str) -> None:
        super().__init__((*table.path, column))
        self.table = table
        self.column = column

    @property
    def dtype(self) -> np.dtype:
        dtypes = self.table.row.structure.get("dtypes") or {}
        return np.dtype(dtypes.get(self.column, "<f8"))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.table),)

    @property
    def dims(self) -> tuple[str, ...]:
        return ("dim_0",)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        values = self.table.read([self.column])[self.column]
        return to_array(values.tolist())[start:stop]
