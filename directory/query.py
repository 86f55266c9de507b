"""Searching the directory index with the same query classes (and the same JSON comparisons)
as catalogs of runs: ``Key('NX_class') == 'NXentry'`` looks in a node's metadata (HDF5
attributes, XDI headers...), ``FullText`` in its words (names, headers, string attributes),
``TimeRange`` in files' modification times."""

from __future__ import annotations

import sqlalchemy as sa

from bluebroker import queries as q
from bluebroker.catalog import search as run_search
from bluebroker.catalog.writes import WORD

from .index import nodes


class MetadataPath(run_search.JsonPath):
    """A metadata key of a directory node. ``start.`` (the default section of query keys)
    is the metadata's top; other sections are plain keys (``Key('stop.x')`` is stop -> x)."""

    def __init__(self, key: str, dialect: str) -> None:
        section, _, rest = q.normalize_key(key).partition(".")
        self.column = nodes.c.metadata
        self.parts = (rest if section == "start" else f"{section}.{rest}").split(".")
        self.pg = dialect == "postgresql"


def _fulltext(text: str, pg: bool) -> sa.ColumnElement:
    words = WORD.findall(text)
    if not words:
        raise q.QueryError("full-text search needs at least one word")
    if pg:
        return sa.func.to_tsvector("simple", nodes.c.text).op("@@")(
            sa.func.plainto_tsquery("simple", " ".join(words))
        )
    match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    return nodes.c.id.in_(
        sa.text("SELECT rowid FROM directory_fts WHERE directory_fts MATCH :m")
        .bindparams(m=match)
        .columns(sa.column("rowid"))
    )


def condition(query: q.Query, dialect: str) -> sa.ColumnElement:
    """The WHERE clause for one query on ``directory_nodes``."""
    pg = dialect == "postgresql"
    match query:
        case q.Eq(key=key, value=value):
            return run_search._eq(MetadataPath(key, dialect), value)
        case q.NotEq(key=key, value=value):
            return run_search._not(run_search._eq(MetadataPath(key, dialect), value))
        case q.Comparison(operator=op, key=key, value=value):
            return run_search._comparison(MetadataPath(key, dialect), op, value)
        case q.Contains(key=key, value=value):
            return run_search._contains(MetadataPath(key, dialect), value)
        case q.NotIn(key=key, value=values):
            return run_search._not(run_search._in(MetadataPath(key, dialect), values))
        case q.In(key=key, value=values):
            return run_search._in(MetadataPath(key, dialect), values)
        case q.FullText(text=text):
            return _fulltext(text, pg)
        case q.Regex(key=key, pattern=pattern, case_sensitive=case_sensitive):
            run_search._check_regex(pattern)
            text = MetadataPath(key, dialect).text()
            return run_search.regex_match(text, pattern, case_sensitive, pg)
        case q.TimeRange():
            return run_search.time_range(nodes.c.mtime, query)
    raise q.QueryError(
        f"{type(query).__name__} searches runs, not files; files are searched by metadata "
        "keys, full text and TimeRange (their modification time)"
    )


SPECIAL_SORT = {"name": nodes.c.name, "size": nodes.c.size, "mtime": nodes.c.mtime}


def order_by(sort: tuple[tuple[str, int], ...], dialect: str) -> list[sa.ColumnElement]:
    """ORDER BY terms: ``name``, ``size``, ``mtime`` or a metadata key; then by name and
    path (names repeat in a subtree: pages must not overlap)."""
    terms: list[sa.ColumnElement] = []
    for key, direction in sort:
        if direction not in (1, -1):
            raise q.QueryError(f"sort direction must be 1 or -1, got {direction!r} for {key!r:.80}")
        bare = key.removeprefix("start.")
        if bare in SPECIAL_SORT:
            exprs = [SPECIAL_SORT[bare]]
        else:
            path = MetadataPath(key, dialect)
            exprs = [path.number(), path.text()]
        terms += [(e.asc() if direction == 1 else e.desc()).nulls_last() for e in exprs]
    return [*terms, nodes.c.name.asc(), nodes.c.path.asc()]
