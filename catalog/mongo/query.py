"""bluebroker's queries as MongoDB filters on ``run_start``, so a search of a Mongo source runs
in MongoDB, as it does in SQL for a catalog of runs.

Keys address run metadata as everywhere: ``start.<key>`` (or a bare key) is a field of the
start document, ``stop.<key>`` one of the stop document (looked up in ``run_stop`` first, then
matched by ``uid``), and the few summary keys that are start or stop fields under another
name (``summary.scan_id``, ``summary.plan_name``, ``summary.timestamp``, ``summary.uid``,
``summary.exit_status``). The other summary keys (duration, num_events, stream_names,
datetime) are computed by bluebroker and are refused in searches of a Mongo source.

Where MongoDB's semantics differ from the SQL catalog's the filter is written so that the
answer is the same: ``Eq`` on a scalar does not match arrays holding it, ``Contains`` is an
array element or a substring. ``FullText`` uses MongoDB's ``$text`` when ``run_start`` has a
text index (which Databroker's setup creates; ``$text`` then searches the start documents, as
MongoDB's text index words them). Without one (a legacy database is never written to, so no
index is made for it) the runs whose start and stop hold every word, as the SQL catalog
words them (``search_text``: string values and scalar numbers, case ignored), are found by
reading the start and stop documents (``text_uids``): one pass over ``run_start``, slower
than an index on a big database, but the same answer as the SQL catalog of the same runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bluebroker import queries as q

from ..search import _check_regex
from ..writes import WORD

# summary keys that are stored fields of the start or stop document under another name
SUMMARY_FIELDS = {
    "uid": ("start", "uid"),
    "scan_id": ("start", "scan_id"),
    "plan_name": ("start", "plan_name"),
    "timestamp": ("start", "time"),
    "exit_status": ("stop", "exit_status"),
}
NOTHING: dict[str, Any] = {"uid": {"$in": []}}


def field_of(key: str) -> tuple[str, str]:
    """``(collection section, dotted field)`` for a metadata key: ``('start', 'plan_name')``."""
    section, _, rest = q.normalize_key(key).partition(".")
    if section == "summary":
        if rest not in SUMMARY_FIELDS:
            raise q.QueryError(
                f"{key!r:.80} is computed by bluebroker and cannot be searched or sorted in a "
                f"MongoDB source; use start.* or stop.* keys, or summary."
                f"{', summary.'.join(SUMMARY_FIELDS)}"
            )
        return SUMMARY_FIELDS[rest]
    if rest.startswith("$") or any(p.startswith("$") or not p for p in rest.split(".")):
        raise q.QueryError(f"{key!r:.80} is not a metadata key (no empty parts, no '$')")
    return section, rest


def _typed(field: str, spec: dict[str, Any], kind: str) -> dict[str, Any]:
    """``spec`` on a value of JSON type ``kind`` held at ``field`` itself: MongoDB would also
    match an array holding such a value, which the SQL catalog does not."""
    return {"$and": [{field: {**spec, "$type": kind}}, {field: {"$not": {"$type": "array"}}}]}


def _eq(field: str, value: Any) -> dict[str, Any]:
    if value is None:  # missing or null, as in SQL
        return {field: None}
    if isinstance(value, bool):  # True is not 1 here, as in SQL (JSON types)
        return _typed(field, {"$eq": value}, "bool")
    if isinstance(value, int | float):
        return _typed(field, {"$eq": value}, "number")
    if isinstance(value, str):
        return _typed(field, {"$eq": value}, "string")
    if isinstance(value, list | dict):
        return {field: {"$eq": value}}
    raise q.QueryError(f"cannot compare metadata with {type(value).__name__} {value!r:.80}")


def _not(condition: dict[str, Any]) -> dict[str, Any]:
    return {"$nor": [condition]}


_OPS = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


def _comparison(field: str, operator: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise q.QueryError(f"comparisons need a number or a string, got {value!r:.80}")
    kind = "string" if isinstance(value, str) else "number"
    return _typed(field, {_OPS[operator]: value}, kind)


def _contains(field: str, value: Any) -> dict[str, Any]:
    in_array = {"$and": [{field: {"$type": "array"}}, {field: {"$elemMatch": {"$eq": value}}}]}
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return in_array
    substring = _typed(field, {"$regex": re.escape(str(value))}, "string")
    return {"$or": [in_array, substring]}


def _in(field: str, values: list) -> dict[str, Any]:
    return {"$or": [_eq(field, v) for v in values]} if values else NOTHING


def _fulltext(
    text: str,
    has_text_index: Callable[[], bool],
    text_uids: Callable[[list[str]], list[str]],
) -> dict[str, Any]:
    words = WORD.findall(text)
    if not words:
        raise q.QueryError("full-text search needs at least one word")
    if has_text_index():
        return {"$text": {"$search": " ".join(f'"{w}"' for w in words)}}
    return {"uid": {"$in": text_uids(words)}}


def holds_words(words: set[str], text: str) -> bool:
    """Whether ``text`` (a ``search_text``) holds every one of ``words`` (lower case) as a
    word, case ignored: the SQL catalog's match (PostgreSQL's 'simple' configuration and
    SQLite's FTS5 both fold case and match whole words)."""
    return words <= {w.lower() for w in WORD.findall(text)}


def partial_uid(prefixes: tuple[str, ...]) -> dict[str, Any]:
    return {"$or": [{"uid": {"$regex": "^" + re.escape(p)}} for p in prefixes]}


def condition(query: q.Query, field: str) -> dict[str, Any]:
    """The filter for one key-based query on ``field`` of its document."""
    match query:
        case q.Eq(value=value):
            return _eq(field, value)
        case q.NotEq(value=value):
            return _not(_eq(field, value))
        case q.Comparison(operator=op, value=value):
            return _comparison(field, op, value)
        case q.Contains(value=value):
            return _contains(field, value)
        case q.NotIn(value=values):
            return _not(_in(field, values))
        case q.In(value=values):
            return _in(field, values)
        case q.Regex(pattern=pattern, case_sensitive=case_sensitive):
            _check_regex(pattern)
            spec = {"$regex": pattern, **({} if case_sensitive else {"$options": "i"})}
            return _typed(field, spec, "string")
    raise q.QueryError(f"unsupported query {query!r:.200}")


class Compiler:
    """Turns queries into one ``run_start`` filter. ``stop_uids(filter)`` gives the start uids
    of runs whose stop document matches ``filter``; ``latest(scan_ids)`` the uid of the newest
    run of each scan_id; ``has_text_index()`` whether ``$text`` can be used, and
    ``text_uids(words)`` the uids of the runs holding every word when it cannot."""

    def __init__(
        self,
        stop_uids: Callable[[dict], list[str]],
        latest: Callable[[list[int]], list[str]],
        has_text_index: Callable[[], bool],
        text_uids: Callable[[list[str]], list[str]],
    ) -> None:
        self.stop_uids = stop_uids
        self.latest = latest
        self.has_text_index = has_text_index
        self.text_uids = text_uids

    def one(self, query: q.Query) -> dict[str, Any]:
        match query:
            case q.FullText(text=text):
                return _fulltext(text, self.has_text_index, self.text_uids)
            case q.TimeRange():
                since, until = query.bounds()
                bounds = {}
                if since is not None:
                    bounds["$gte"] = since
                if until is not None:
                    bounds["$lt"] = until
                return {"time": bounds} if bounds else {}
            case q.ScanID(scan_ids=ids, duplicates=duplicates):
                if duplicates == "all":
                    return {"scan_id": {"$in": list(ids)}}
                return {"uid": {"$in": self.latest(list(ids))}}
            case q.PartialUID(partial_uids=prefixes):
                return partial_uid(prefixes)
        section, field = field_of(query.key)  # type: ignore[attr-defined]
        if section == "start":
            return condition(query, field)
        if isinstance(query, q.NotEq | q.NotIn):  # runs without a stop match too
            positive = q.Eq if isinstance(query, q.NotEq) else q.In
            found = condition(positive(query.key, query.value), field)
            return {"uid": {"$nin": self.stop_uids(found)}}
        return {"uid": {"$in": self.stop_uids(condition(query, field))}}

    def all(self, queries: tuple[q.Query, ...]) -> dict[str, Any]:
        parts = [f for f in (self.one(x) for x in queries) if f]
        return {} if not parts else parts[0] if len(parts) == 1 else {"$and": parts}


def check(query: q.Query) -> None:
    """Refuse now (a QueryError) what could never be compiled, before any database call."""
    if isinstance(query, q.FullText):
        if not WORD.findall(query.text):
            raise q.QueryError("full-text search needs at least one word")
        return
    if isinstance(query, q.TimeRange | q.ScanID | q.PartialUID):
        return
    key = getattr(query, "key", None)
    if key is None:
        raise q.QueryError(f"unsupported query {query!r:.200}")
    _, field = field_of(key)
    condition(query, field)


def sort_spec(keys: tuple[tuple[str, int], ...]) -> list[tuple[str, int]]:
    """A pymongo sort for ``(key, 1 | -1)`` pairs of start metadata; ties by ``_id`` the other
    way, as in the ``(time 1, _id -1)`` index that suitcase-mongo and Databroker make, so that
    MongoDB walks that index instead of sorting a large collection in memory."""
    out = []
    for key, direction in keys:
        if direction not in (1, -1):
            raise q.QueryError(f"sort direction must be 1 or -1, got {direction!r} for {key!r:.80}")
        section, field = field_of(key)
        if section != "start":
            raise q.QueryError(
                f"a MongoDB source sorts by start metadata only, not by {key!r:.80}"
            )
        out.append((field, direction))
    last = keys[-1][1] if keys else 1
    return [*out, ("_id", -last)]
