"""Databroker 1.2.5 searches (keyword arguments and Mongo-style dicts) as bluebroker queries.

``db(plan_name='scan', since='2024-01-01', num_points={'$gte': 10})`` becomes a chain of
``bluebroker.queries`` the server evaluates; Mongo-style values and dicts are translated by
``bluebroker.mongo_queries``, which the Python client shares.
"""

from __future__ import annotations

import warnings
from typing import Any

from bluebroker.mongo_queries import field_queries
from bluebroker.queries import Comparison, FullText, Query

from ._times import to_timestamp


def to_queries(criteria: dict[str, Any], tz: str | None = None) -> list[Query]:
    """Queries for one call's keyword arguments (``since``/``until``/``text_search`` included;
    ``data_key`` is handled by the caller, since it looks inside descriptors)."""
    criteria = dict(criteria)
    if "start_time" in criteria or "stop_time" in criteria:
        warnings.warn(
            "The keywords 'start_time' and 'stop_time' are deprecated; use 'since' and 'until'",
            stacklevel=3,
        )
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
        queries += field_queries(key, value)
    return queries
