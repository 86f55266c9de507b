"""Names a publisher sends that become parts of URLs or database keys, checked at the door.

A run's uid, a stream's name, a field's name and a configuration object's name are path
segments of the tree people browse (``/bmm/raw/<uid>/primary/data/det1``): one with a slash,
a control character, ``.``/``..`` or no characters at all would be stored and then be
unreachable, or reach another node. Every other identifier (event, resource and datum uids,
the parents documents name) is a database key: a NUL cannot be stored in PostgreSQL text,
and on SQLite it would make a key no URL can name. Both are refused with the field named,
before anything is written.
"""

from __future__ import annotations

import re
from typing import Any

MAX_NAME = 256
_NOT_IN_SEGMENT = re.compile(r"[\x00-\x1f\x7f/]")

# Fields whose value is an identifier (a NUL is refused), per document name; lists are
# checked item by item.
_KEYS = {
    "start": ("uid",),
    "stop": ("uid", "run_start"),
    "descriptor": ("uid", "run_start"),
    "event": ("uid", "descriptor"),
    "event_page": ("uid", "descriptor"),
    "resource": ("uid", "run_start"),
    "datum": ("datum_id", "resource"),
    "datum_page": ("datum_id", "resource"),
    "stream_resource": ("uid", "run_start"),
    "stream_datum": ("uid", "stream_resource", "descriptor"),
}


def segment_problem(value: Any) -> str | None:
    """Why ``value`` cannot be one segment of a node's path, or None if it can."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value or value in (".", ".."):
        return f"{value!r} cannot name a node"
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long; at most {MAX_NAME}"
    bad = _NOT_IN_SEGMENT.search(value)
    if bad:
        return (
            f"{value[:60]!r} holds {bad.group()!r}; slashes and control characters "
            "cannot be in a name"
        )
    return None


def names_problem(name: str, doc: dict) -> str | None:
    """The first identifier or name in ``doc`` that bluebroker cannot store or serve, said
    with its field, or None. ``doc`` has passed event-model's schema."""
    for field in _KEYS.get(name, ()):
        value = doc.get(field)
        values = value if isinstance(value, list) else (value,)
        for v in values:
            if isinstance(v, str) and "\x00" in v:
                return f"{field} holds a NUL character, which cannot be stored"
    if name == "start":
        return _named("uid (a run's uid is part of its URL)", doc.get("uid"))
    if name == "descriptor":
        problem = _named("name (the stream's name is part of its URL)", doc.get("name", "primary"))
        for key in doc.get("data_keys", {}):
            problem = problem or _named(f"data key {key[:60]!r}", key)
        for obj, config in (doc.get("configuration") or {}).items():
            problem = problem or _named(f"configuration object {obj[:60]!r}", obj)
            for key in (config or {}).get("data", {}) if isinstance(config, dict) else ():
                problem = problem or _named(f"configuration key {key[:60]!r}", key)
        return problem
    if name == "stream_resource":
        return _named("data_key", doc.get("data_key"))
    return None


def _named(what: str, value: Any) -> str | None:
    problem = segment_problem(value)
    return f"{what} {problem}" if problem else None
