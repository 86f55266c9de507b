"""A catalog of runs: sorted by start time, searchable in SQL, paged, addressable by uid."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bluebroker import queries as q

from . import access, search
from .engine import time_limit
from .errors import AmbiguousKey, NotFound
from .node import Container
from .schema import catalogs, runs
from .sort_keys import check_sort_keys

if TYPE_CHECKING:
    from .run import Run
    from .tree import Catalog

DEFAULT_SORT: tuple[tuple[str, int], ...] = (("start.time", 1),)
PAGE = 1000
# Seconds one search statement may run (a catalog's ``search_timeout`` attribute overrides
# it; the server sets that from its limits): a regex or a sort over a large catalog must not
# hold a connection and a worker thread for minutes.
SEARCH_TIMEOUT = 10.0
# PostgreSQL error codes: query_canceled (the statement timeout), invalid_regular_expression
TIMED_OUT, BAD_REGEX = "57014", "2201B"


class RunCatalog(Container):
    """Runs of one catalog path (e.g. ``bmm/raw``), optionally narrowed by queries.

    Keys are start uids in sort order (oldest first by default, so ``[-1]`` is the newest).
    Integer and prefix look-ups are separate methods because a uid is the only true key.
    """

    specs = ("CatalogOfBlueskyRuns",)

    def __init__(
        self,
        root: Catalog,
        path: tuple[str, ...],
        catalog_id: int,
        queries: tuple[q.Query, ...] = (),
        sort: tuple[tuple[str, int], ...] = DEFAULT_SORT,
    ) -> None:
        super().__init__(path)
        self.root = root
        self.catalog_id = catalog_id
        self.queries = queries
        self.sort_keys = sort

    @property
    def metadata(self) -> dict[str, Any]:
        return self.root.catalog_metadata(self.catalog_id)

    # -- narrowing -----------------------------------------------------------------------

    def search(self, query: q.Query) -> RunCatalog:
        """A catalog narrowed by ``query`` (queries chain with AND)."""
        search.condition(query, self.root.dialect)  # fail now, not at first read
        return RunCatalog(
            self.root, self.path, self.catalog_id, (*self.queries, query), self.sort_keys
        )

    def sort(self, *keys: tuple[str, int]) -> RunCatalog:
        """A catalog ordered by ``(key, 1 | -1)`` pairs, e.g. ``("start.scan_id", -1)``; a
        key that no run of this path holds is refused (a QueryError naming the keys)."""
        search.order_by(list(keys), self.root.dialect)
        with self._connect() as conn:
            check_sort_keys(conn, self.catalog_id, list(keys), self.root.dialect)
        return RunCatalog(self.root, self.path, self.catalog_id, self.queries, tuple(keys))

    def _where(self) -> list[sa.ColumnElement]:
        return [
            runs.c.catalog_id == self.catalog_id,
            *(search.condition(query, self.root.dialect) for query in self.queries),
            *access.run_condition("/".join(self.path), self.root.dialect),  # the caller's runs
        ]

    def _ordered(self, columns: list, reverse: bool = False) -> sa.Select:
        sort = [(k, -d if reverse else d) for k, d in self.sort_keys]
        return (
            sa.select(*columns)
            .where(*self._where())
            .order_by(*search.order_by(sort, self.root.dialect))
        )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A connection whose statements stop after the search time limit; a stopped
        statement is a :class:`search.QueryTimeout`, a regex PostgreSQL refuses a QueryError."""
        seconds = getattr(self.root, "search_timeout", SEARCH_TIMEOUT)
        with self.root.connect() as conn:
            try:
                with time_limit(conn, seconds):
                    yield conn
            except sa.exc.DBAPIError as err:
                code = getattr(err.orig, "sqlstate", None)
                if code == TIMED_OUT or "interrupted" in str(err.orig):
                    raise search.QueryTimeout(
                        f"the search was stopped after {seconds:g} s; narrow it (more specific "
                        "filters, a time range) or try again when the server is less busy"
                    ) from None
                if code == BAD_REGEX:
                    raise q.QueryError(
                        f"PostgreSQL cannot use this regex: {str(err.orig).splitlines()[0]}"
                    ) from None
                raise

    # -- mapping -------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._connect() as conn:
            if not self.queries and access.current() is None:  # the writer keeps this count
                return conn.execute(
                    sa.select(catalogs.c.num_runs).where(catalogs.c.id == self.catalog_id)
                ).scalar_one()
            return conn.execute(
                sa.select(sa.func.count()).select_from(runs).where(*self._where())
            ).scalar_one()

    def keys_range(self, offset: int = 0, limit: int | None = None) -> list[str]:
        stmt = self._ordered([runs.c.uid]).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._connect() as conn:
            return list(conn.execute(stmt).scalars())

    def items_range(self, offset: int = 0, limit: int | None = None) -> list[tuple[str, Run]]:
        stmt = self._ordered(self.root.run_columns()).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._connect() as conn:
            return [(row.uid, self.root.make_run(self.path, row)) for row in conn.execute(stmt)]

    def __iter__(self) -> Iterator[str]:
        offset = 0
        while True:
            page = self.keys_range(offset, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._fetch(runs.c.uid == key) is not None

    def _fetch(self, *where: sa.ColumnElement) -> Run | None:
        stmt = sa.select(*self.root.run_columns()).where(*self._where(), *where).limit(1)
        with self._connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else self.root.make_run(self.path, row)

    def __getitem__(self, key: str | int) -> Run:
        """A run by full uid, unique uid prefix, negative position, or positive scan_id."""
        if isinstance(key, bool):
            raise TypeError("runs are looked up by uid, uid prefix, scan_id or negative index")
        if isinstance(key, int):
            return self.by_index(key) if key < 0 else self.by_scan_id(key)
        if not isinstance(key, str):
            raise TypeError(f"runs are looked up by uid (str) or int, not {type(key).__name__}")
        run = self._fetch(runs.c.uid == key)
        return run if run is not None else self.by_partial_uid(key)

    def by_index(self, index: int) -> Run:
        """``-1`` is the last run in sort order (the newest by default), ``0`` the first."""
        reverse = index < 0
        offset = -index - 1 if reverse else index
        stmt = self._ordered(self.root.run_columns(), reverse=reverse).offset(offset).limit(1)
        with self._connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(
                f"index {index} is out of range: /{'/'.join(self.path)} has {len(self)} runs"
            )
        return self.root.make_run(self.path, row)

    def by_scan_id(self, scan_id: int) -> Run:
        """The newest run with this scan_id."""
        stmt = (
            sa.select(*self.root.run_columns())
            .where(*self._where(), runs.c.scan_id == scan_id)
            .order_by(runs.c.time.desc(), runs.c.id.desc())
            .limit(1)
        )
        with self._connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(f"no run with scan_id {scan_id} in /{'/'.join(self.path)}")
        return self.root.make_run(self.path, row)

    def by_partial_uid(self, prefix: str) -> Run:
        """The one run whose uid starts with ``prefix``; ambiguity is an error, not a guess."""
        cond = search.condition(q.PartialUID(prefix), self.root.dialect)
        stmt = sa.select(*self.root.run_columns()).where(*self._where(), cond).limit(2)
        with self._connect() as conn:
            found = conn.execute(stmt).all()
        if not found:
            raise NotFound(
                f"no run with uid or uid prefix {prefix!r:.80} in /{'/'.join(self.path)}"
            )
        if len(found) > 1:
            raise AmbiguousKey(
                f"uid prefix {prefix!r} matches more than one run "
                f"({found[0].uid}, {found[1].uid}, ...); give more characters"
            )
        return self.root.make_run(self.path, found[0])
