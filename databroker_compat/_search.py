"""Databroker 1.2.5 searches (keyword arguments and Mongo-style dicts) as bluebroker queries.

``db(plan_name='scan', since='2024-01-01', num_points={'$gte': 10})`` becomes a chain of
``bluebroker.queries`` the server evaluates. Mongo operators supported: ``$eq $ne $gt $gte
$lt $lte $in $nin $regex`` (with ``$options: 'i'``) and ``$and``; the others get an error
naming what is supported rather than a silently different answer.
"""

from __future__ import annotations

from typing import Any

from bluebroker.queries import (
    Comparison,
    Eq,
    FullText,
    In,
    NotEq,
    NotIn,
    Query,
    Regex,
)

from ._times import to_timestamp

SUPPORTED = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $regex, $and"
_COMPARISONS = {"$gt": "gt", "$gte": "ge", "$lt": "lt", "$lte": "le"}


def to_queries(criteria: dict[str, Any], tz: str | None = None) -> list[Query]:
    """Queries for one call's keyword arguments (``since``/``until``/``text_search`` included;
    ``data_key`` is handled by the caller, since it looks inside descriptors)."""
    criteria = dict(criteria)
    for old, new in (("start_time", "since"), ("stop_time", "until")):
        if old in criteria:
            if new in criteria:
                raise TypeError(f"cannot use both {new!r} and its deprecated name {old!r}")
            criteria[new] = criteria.pop(old)
    queries: list[Query] = []
    since, until = criteria.pop("since", None), criteria.pop("until", None)
    if since:
        queries.append(Comparison("ge", "time", to_timestamp(since, tz)))
    if until:
        queries.append(Comparison("le", "time", to_timestamp(until, tz)))
    text = criteria.pop("text_search", None)
    if text:
        queries.append(FullText(str(text)))
    for key, value in criteria.items():
        queries += _field(key, value)
    return queries


def from_mongo(query: dict[str, Any]) -> list[Query]:
    """Queries for a Mongo-style dict (``{'plan_name': 'scan', 'num': {'$gt': 3}}``)."""
    queries: list[Query] = []
    for key, value in query.items():
        if key == "$and":
            for part in value:
                queries += from_mongo(part)
        elif key.startswith("$"):
            raise ValueError(f"the {key} operator is not supported here; supported: {SUPPORTED}")
        else:
            queries += _field(key, value)
    return queries


def _field(key: str, value: Any) -> list[Query]:
    if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
        return _operators(key, value)
    return [Eq(key, value)]


def _operators(key: str, ops: dict[str, Any]) -> list[Query]:
    out: list[Query] = []
    flags = ops.get("$options", "")
    for op, value in ops.items():
        if op == "$eq":
            out.append(Eq(key, value))
        elif op == "$ne":
            out.append(NotEq(key, value))
        elif op in _COMPARISONS:
            out.append(Comparison(_COMPARISONS[op], key, value))
        elif op == "$in":
            out.append(In(key, list(value)))
        elif op == "$nin":
            out.append(NotIn(key, list(value)))
        elif op == "$regex":
            out.append(Regex(key, str(value), case_sensitive="i" not in flags))
        elif op == "$options":
            continue
        else:
            raise ValueError(
                f"the {op} operator (on {key!r}) is not supported here; supported: {SUPPORTED}"
            )
    return out
