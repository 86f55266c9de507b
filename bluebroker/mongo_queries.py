"""Mongo-style query dicts as bluebroker queries, for the client and the databroker facade.

Years of scripts search with ``{'plan_name': 'scan', 'num_points': {'$gte': 10}}``, the way
Databroker 1.x passed them to MongoDB. Both the Python client's ``search`` and the
``databroker`` facade accept them, so this translation lives in the shared vocabulary.
Operators supported: ``$eq $ne $gt $gte $lt $lte $in $nin $regex`` (with ``$options: 'i'``)
and ``$and``; any other gets an error naming what is supported, never a silently different
answer.
"""

from __future__ import annotations

from typing import Any

from .queries import Comparison, Eq, In, NotEq, NotIn, Query, Regex

SUPPORTED = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $regex, $and"
_COMPARISONS = {"$gt": "gt", "$gte": "ge", "$lt": "lt", "$lte": "le"}


def from_mongo(query: dict[str, Any]) -> list[Query]:
    """Queries for a Mongo-style dict (``{'plan_name': 'scan', 'num': {'$gt': 3}}``)."""
    if not isinstance(query, dict):
        raise TypeError(f"a Mongo-style query is a dict, not {type(query).__name__}")
    queries: list[Query] = []
    for key, value in query.items():
        if key == "$and":
            if not isinstance(value, list | tuple):
                raise ValueError("$and takes a list of query dicts")
            for part in value:
                queries += from_mongo(part)
        elif not isinstance(key, str):
            raise TypeError(f"query keys are metadata keys (strings), not {key!r}")
        elif key.startswith("$"):
            raise ValueError(f"the {key} operator is not supported here; supported: {SUPPORTED}")
        else:
            queries += field_queries(key, value)
    return queries


def field_queries(key: str, value: Any) -> list[Query]:
    """``key: value`` or ``key: {'$op': value, ...}`` as queries on one metadata key."""
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
