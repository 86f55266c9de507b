"""Compile :mod:`bluebroker.queries` into SQL on the ``runs`` table, for SQLite and PostgreSQL.

Queries run in the database, never by loading runs into Python. A JSON value is compared by
its JSON type, so ``Eq('scan_id', 3)`` matches the number 3 and not the string "3", and a key
that holds a string never makes a numeric comparison fail on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from bluebroker import queries as q

from .engine import compile_regex
from .errors import CatalogError
from .schema import runs
from .writes import WORD


class QueryTimeout(CatalogError):
    """A search that ran past its time limit and was stopped (the server answers 503)."""


COLUMNS = {"start": runs.c.start, "stop": runs.c.stop, "summary": runs.c.summary}
FAST_KEYS = {"start.time": runs.c.time, "start.scan_id": runs.c.scan_id, "start.uid": runs.c.uid}


class JsonPath:
    """Typed views of one JSON path in one column, per dialect."""

    def __init__(self, key: str, dialect: str) -> None:
        section, _, rest = q.normalize_key(key).partition(".")
        self.column = COLUMNS[section]
        self.parts = rest.split(".")
        self.pg = dialect == "postgresql"

    @property
    def _sqlite_path(self) -> str:
        # Numeric parts index arrays, as they do in PostgreSQL's #> paths.
        return "$" + "".join(
            f"[{p}]" if p.isdigit() else '."' + p.replace('"', '\\"') + '"' for p in self.parts
        )

    @property
    def _pg_path(self) -> sa.ColumnElement:
        return sa.literal(self.parts, ARRAY(sa.Text))

    def json(self) -> sa.ColumnElement:
        if self.pg:
            return self.column.op("#>")(self._pg_path)
        return sa.func.json_extract(self.column, self._sqlite_path)

    def raw_text(self) -> sa.ColumnElement:
        if self.pg:
            return self.column.op("#>>", return_type=sa.Text)(self._pg_path)
        return sa.func.json_extract(self.column, self._sqlite_path)

    def type(self) -> sa.ColumnElement:
        if self.pg:
            return sa.func.jsonb_typeof(self.json())
        return sa.func.json_type(self.column, self._sqlite_path)

    def is_type(self, kind: str) -> sa.ColumnElement:
        """kind is one of: string, number, boolean, null, array, object."""
        if self.pg:
            return self.type() == kind
        names = {
            "string": ("text",),
            "number": ("integer", "real"),
            "boolean": ("true", "false"),
            "null": ("null",),
            "array": ("array",),
            "object": ("object",),
        }[kind]
        return self.type().in_(names)

    def text(self) -> sa.ColumnElement:
        return sa.case((self.is_type("string"), self.raw_text()), else_=None)

    def number(self) -> sa.ColumnElement:
        value = sa.cast(self.raw_text(), sa.Float) if self.pg else self.raw_text()
        return sa.case((self.is_type("number"), value), else_=None)


def _jsonb(value: Any) -> sa.ColumnElement:
    """A bound parameter that PostgreSQL receives as jsonb (serialized once, by the type)."""
    return sa.bindparam(None, value, type_=JSONB)


def _eq(path: JsonPath, value: Any) -> sa.ColumnElement:
    if value is None:
        return sa.or_(path.type().is_(None), path.is_type("null"))
    if isinstance(value, bool):
        if path.pg:
            return sa.and_(path.is_type("boolean"), path.raw_text() == json.dumps(value))
        return path.type() == ("true" if value else "false")
    if isinstance(value, int | float):
        return path.number() == value
    if isinstance(value, str):
        return path.text() == value
    if isinstance(value, list | dict):
        if path.pg:
            return path.json() == _jsonb(value)
        kind = "array" if isinstance(value, list) else "object"
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
        return sa.and_(path.is_type(kind), path.raw_text() == text)
    raise q.QueryError(f"cannot compare metadata with {type(value).__name__} {value!r:.80}")


def _not(condition: sa.ColumnElement) -> sa.ColumnElement:
    """Negation in which a missing key counts as 'not equal' (Mongo semantics)."""
    return sa.not_(sa.func.coalesce(condition, sa.false()))


_OPS = {"lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}


def _comparison(path: JsonPath, operator: str, value: Any) -> sa.ColumnElement:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise q.QueryError(f"comparisons need a number or a string, got {value!r:.80}")
    expr = path.text() if isinstance(value, str) else path.number()
    return getattr(expr, _OPS[operator])(value)


def _contains(path: JsonPath, value: Any) -> sa.ColumnElement:
    if path.pg:
        in_array = path.json().op("@>")(_jsonb([value]))
        in_text = sa.func.strpos(path.raw_text(), str(value)) > 0
    else:
        each = sa.func.json_each(path.column, path._sqlite_path).table_valued("value", "type")
        if isinstance(value, list | dict):  # json_each gives nested values as their JSON text
            text = json.dumps(value, separators=(",", ":"), sort_keys=True)
            kind = "array" if isinstance(value, list) else "object"
            match = sa.and_(each.c.type == kind, each.c.value == text)
        else:
            match = each.c.value == value
        in_array = sa.exists().select_from(each).where(match)
        in_text = sa.func.instr(path.raw_text(), str(value)) > 0
    return sa.case(
        (path.is_type("array"), in_array),
        (path.is_type("string"), in_text),
        else_=sa.false(),
    )


def _fulltext(text: str, pg: bool) -> sa.ColumnElement:
    words = WORD.findall(text)  # the same word split as the indexed text (writes.py)
    if not words:
        raise q.QueryError("full-text search needs at least one word")
    if pg:
        return sa.func.to_tsvector("simple", runs.c.text).op("@@")(
            sa.func.plainto_tsquery("simple", " ".join(words))
        )
    match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    return runs.c.id.in_(
        sa.text("SELECT rowid FROM runs_fts WHERE runs_fts MATCH :m")
        .bindparams(m=match)
        .columns(sa.column("rowid"))
    )


def _scan_id(query: q.ScanID) -> sa.ColumnElement:
    condition = runs.c.scan_id.in_(list(query.scan_ids))
    if query.duplicates == "latest":
        newer = runs.alias("newer")
        condition = sa.and_(
            condition,
            ~sa.exists().where(
                newer.c.catalog_id == runs.c.catalog_id,
                newer.c.scan_id == runs.c.scan_id,
                newer.c.time > runs.c.time,
            ),
        )
    return condition


def _partial_uid(prefixes: tuple[str, ...], pg: bool) -> sa.ColumnElement:
    if pg:
        return sa.or_(*(runs.c.uid.startswith(p, autoescape=True) for p in prefixes))
    # SQLite's LIKE ignores case and the index; a binary range uses the uid index. Many
    # prefixes are a JSON list read as a table: an OR of each nests too deep for SQLite.
    top = "\U0010ffff"
    if len(prefixes) <= 8:
        return sa.or_(*(sa.and_(runs.c.uid >= p, runs.c.uid < p + top) for p in prefixes))
    each = sa.func.json_each(sa.bindparam(None, json.dumps(prefixes))).table_valued("value")
    return (
        sa.exists()
        .select_from(each)
        .where(runs.c.uid >= each.c.value, runs.c.uid < each.c.value.concat(top))
    )


def _in(path: JsonPath, values: list) -> sa.ColumnElement:
    """A few flat INs, one per JSON type: an OR of a thousand comparisons nests a thousand
    levels deep in SQLite's parser, which refuses that (its limit is 1000)."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    texts = [v for v in values if isinstance(v, str)]
    parts = [path.number().in_(numbers)] if numbers else []
    if texts:
        parts.append(path.text().in_(texts))
    singles = {json.dumps(v) for v in values if v is None or isinstance(v, bool)}
    parts += [_eq(path, json.loads(v)) for v in sorted(singles)]
    for kind, types in (("array", list | tuple), ("object", dict)):
        nested = [v for v in values if isinstance(v, types)]
        if not nested:
            continue
        if path.pg:
            parts.append(path.json().in_([_jsonb(v) for v in nested]))
        else:
            canonical = [json.dumps(v, separators=(",", ":"), sort_keys=True) for v in nested]
            parts.append(sa.and_(path.is_type(kind), path.raw_text().in_(canonical)))
    return sa.or_(sa.false(), *parts)


def _check_regex(pattern: str) -> None:
    """Regexes are RE2 syntax on both backends, checked here so a bad one is a 400 naming
    the problem (SQLite evaluates them with RE2; PostgreSQL with its own engine, under the
    search's statement timeout)."""
    try:
        compile_regex(pattern)
    except ValueError as err:
        raise q.QueryError(
            f"cannot use regex {pattern!r:.80}: {err}; patterns are RE2 syntax, which has no "
            "backreferences or lookaround (https://github.com/google/re2/wiki/Syntax)"
        ) from None


def condition(query: q.Query, dialect: str) -> sa.ColumnElement:
    """The WHERE clause for one query."""
    pg = dialect == "postgresql"
    match query:
        case q.Eq(key=key, value=value):
            return _eq(JsonPath(key, dialect), value)
        case q.NotEq(key=key, value=value):
            return _not(_eq(JsonPath(key, dialect), value))
        case q.Comparison(operator=op, key=key, value=value):
            return _comparison(JsonPath(key, dialect), op, value)
        case q.Contains(key=key, value=value):
            return _contains(JsonPath(key, dialect), value)
        case q.NotIn(key=key, value=values):
            return _not(_in(JsonPath(key, dialect), values))
        case q.In(key=key, value=values):
            return _in(JsonPath(key, dialect), values)
        case q.FullText(text=text):
            return _fulltext(text, pg)
        case q.Regex(key=key, pattern=pattern, case_sensitive=case_sensitive):
            _check_regex(pattern)
            return regex_match(JsonPath(key, dialect).text(), pattern, case_sensitive, pg)
        case q.TimeRange():
            return time_range(runs.c.time, query)
        case q.ScanID():
            return _scan_id(query)
        case q.PartialUID(partial_uids=prefixes):
            return _partial_uid(prefixes, pg)
    raise q.QueryError(f"unsupported query {query!r}")


def order_by(sort: list[tuple[str, int]], dialect: str) -> list[sa.ColumnElement]:
    """ORDER BY terms for ``[(key, +1 | -1), ...]``; missing values sort last; ties by id."""
    terms: list[sa.ColumnElement] = []
    last_direction = 1
    for key, direction in sort:
        if direction not in (1, -1):
            raise q.QueryError(f"sort direction must be 1 or -1, got {direction!r} for {key!r:.80}")
        normalized = q.normalize_key(key)
        if normalized in FAST_KEYS:
            exprs = [FAST_KEYS[normalized]]
        else:
            path = JsonPath(key, dialect)
            exprs = [path.number(), path.text()]
        for expr in exprs:
            terms.append((expr.asc() if direction == 1 else expr.desc()).nulls_last())
        last_direction = direction
    terms.append(runs.c.id.asc() if last_direction == 1 else runs.c.id.desc())
    return terms


def regex_match(
    text: sa.ColumnElement, pattern: str, case_sensitive: bool, pg: bool
) -> sa.ColumnElement:
    """``text`` matches ``pattern`` (checked with RE2 first): PostgreSQL's ``~``/``~*``, or
    SQLite's ``regexp`` function (RE2, registered by the engine)."""
    if pg:
        return text.op("~" if case_sensitive else "~*")(pattern)
    return sa.func.regexp(pattern if case_sensitive else "(?i)" + pattern, text)


def time_range(column: sa.ColumnElement, query: q.TimeRange) -> sa.ColumnElement:
    """``column`` (POSIX seconds) within the query's bounds: since inclusive, until not."""
    since, until = query.bounds()
    parts = []
    if since is not None:
        parts.append(column >= since)
    if until is not None:
        parts.append(column < until)
    return sa.and_(sa.true(), *parts)
