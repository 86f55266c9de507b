"""Queries in URLs: ``filter[<query>][condition][<field>]=<value>`` parameters, written by
clients (:func:`to_params`) and read by the server (:func:`from_params`), including the
``lookup`` that Tiled's client sends. Kept apart from the query classes so that each is small;
both sides import this one codec, so the two spellings cannot drift."""

from __future__ import annotations

from collections.abc import Mapping

from .queries import QUERIES, Eq, Query
from .query_values import MAX_QUERIES, QueryError, check_text, parse_field

__all__ = ["LOOKUPS", "from_params", "to_params"]


def to_params(queries: list[Query]) -> list[tuple[str, str]]:
    """URL parameters for a chain of queries: ``filter[eq][condition][key]=...``.

    Repeated queries of the same kind are sent as repeated parameters, position by position.
    """
    params = []
    for q in queries:
        for field, value in q.encode().items():
            params.append((f"filter[{q.name}][condition][{field}]", value))
    return params


def from_params(params: list[tuple[str, str]]) -> list[Query]:
    """Decode :func:`to_params` output; unknown query names raise :class:`QueryError`."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for name, value in params:
        if not name.startswith("filter["):
            continue
        try:
            qname, rest = name[len("filter[") :].split("]", 1)
            field = rest.split("[condition][", 1)[1].rstrip("]")
        except (ValueError, IndexError) as err:
            raise QueryError(
                f"malformed filter parameter {name!r:.120}; "
                "expected filter[<query>][condition][<field>]"
            ) from err
        if qname not in QUERIES and qname not in LOOKUPS:
            known = ", ".join(sorted([*QUERIES, *LOOKUPS]))
            raise QueryError(f"unknown query {qname!r:.80}; known: {known}")
        grouped.setdefault(qname, {}).setdefault(field, []).append(value)
    queries: list[Query] = []
    for qname, fields in grouped.items():
        count = max(len(v) for v in fields.values())
        if len(queries) + count > MAX_QUERIES:
            raise QueryError(f"at most {MAX_QUERIES} filters in one search; combine them ('in')")
        for i in range(count):
            one = {f: values[i] for f, values in fields.items() if i < len(values)}
            decode = LOOKUPS[qname] if qname in LOOKUPS else QUERIES[qname].decode
            queries.append(decode(one))
    return queries


def _lookup(params: Mapping[str, str]) -> Query:
    """Tiled's ``lookup`` query (the child with this key among the results): the key of a
    run is its start uid."""
    unknown = sorted(set(params) - {"key"})
    if unknown or "key" not in params:
        raise QueryError("query 'lookup' takes one parameter, 'key' (a run's uid)")
    key = parse_field("key", params["key"], "query 'lookup' parameter 'key'")
    check_text(key, "a lookup key")
    return Eq("start.uid", key)


# Queries that Tiled's client sends and that are spelled with the ones above.
LOOKUPS = {"lookup": _lookup}
