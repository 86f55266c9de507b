"""Which runs the caller may read, as SQL added to every query that finds runs.

The server decides, per request, what its caller may read (``server/policy.py``) and sets it
here for the duration of the request; :class:`~bluebroker.catalog.runs.RunCatalog` and the
deep-path look-up add it to their WHERE clauses. So searches, counts, ``len()``, paging,
look-ups by uid, scan_id, index or partial uid, and everything below a run (documents, tables,
arrays, exports) only ever see readable runs: a run one may not read is not found (404), never
forbidden (403), which would confirm it exists.

With nothing set (a library or test server, the owner, an admin) every run is readable.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bluebroker import queries as q

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class Grant:
    """Runs of the catalogs under ``catalogs`` (path prefixes such as ``bmm`` or
    ``bmm/raw``; None for every catalog) that match every query in ``queries``."""

    catalogs: tuple[str, ...] | None = None
    queries: tuple[q.Query, ...] = ()

    def covers_catalog(self, path: str) -> bool:
        if self.catalogs is None:
            return True
        return any(path == c or path.startswith(c.rstrip("/") + "/") for c in self.catalogs)


@dataclass(frozen=True)
class Access:
    """What one caller may read: the runs of any of ``grants`` (none: nothing)."""

    grants: tuple[Grant, ...] = ()
    who: str = ""  # for logs and messages

    def condition(self, catalog_path: str, dialect: str) -> sa.ColumnElement:
        """SQL true for the runs of the catalog at ``catalog_path`` this caller may read."""
        from . import search

        alternatives = []
        for grant in self.grants:
            if not grant.covers_catalog(catalog_path):
                continue
            if not grant.queries:
                return sa.true()
            alternatives.append(sa.and_(*(search.condition(x, dialect) for x in grant.queries)))
        return sa.or_(*alternatives) if alternatives else sa.false()


_current: ContextVar[Access | None] = ContextVar("bluebroker_access", default=None)


def current() -> Access | None:
    """What the caller of the request being served may read (None: everything)."""
    return _current.get()


def set_current(access: Access | None) -> None:
    """Set for the rest of this request (the server calls this once it knows the caller)."""
    _current.set(access)


@contextmanager
def reading_as(access: Access | None) -> Iterator[None]:
    """Run a block as a given caller (the live hub checks changes for each subscriber)."""
    token = _current.set(access)
    try:
        yield
    finally:
        _current.reset(token)


def run_condition(catalog_path: str, dialect: str) -> list[sa.ColumnElement]:
    """The WHERE terms that limit runs to the current caller's (empty when unrestricted)."""
    access = _current.get()
    if access is None:
        return []
    return [access.condition(catalog_path, dialect)]
