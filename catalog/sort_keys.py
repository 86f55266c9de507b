"""Sort keys checked against the runs: a typo'd key (``-starttime``) would otherwise sort by
a value no run has, which leaves the order as if unsorted and says nothing.

A key passes when at least one run of the catalog path (whatever the search) holds it, when
it is one of the indexed columns (``time``, ``scan_id``, ``uid``), or when the path has no
runs yet. A refusal names the keys the newest runs do have, and the likeliest one.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import sqlalchemy as sa

from bluebroker import queries as q

from .schema import runs
from .search import FAST_KEYS, JsonPath

SAMPLE = 50  # newest runs whose keys are offered as suggestions
SHOWN = 12  # keys listed in a refusal


def check_sort_keys(
    conn: sa.Connection, catalog_id: int, sort: list[tuple[str, int]], dialect: str
) -> None:
    """Raise :class:`QueryError` for the first key in ``sort`` that no run of the catalog
    path holds, saying what the runs do hold."""
    where = runs.c.catalog_id == catalog_id
    for key, direction in sort:
        normalized = q.normalize_key(key)
        if normalized in FAST_KEYS:
            continue
        held = JsonPath(key, dialect).type().is_not(None)
        if conn.execute(sa.select(runs.c.id).where(where, held).limit(1)).first() is not None:
            continue
        if conn.execute(sa.select(runs.c.id).where(where).limit(1)).first() is None:
            return  # no runs yet: nothing to tell a typo from a key still to come
        raise q.QueryError(_refusal(conn, where, key, direction))


def _refusal(conn: sa.Connection, where: Any, key: str, direction: int) -> str:
    known = _known_keys(conn, where)
    sign = "-" if direction < 0 else ""
    close = _likeliest(key, known)
    hint = f"did you mean {sign}{close}? " if close else ""
    listed = ", ".join(known[:SHOWN]) + (", ..." if len(known) > SHOWN else "")
    return (
        f"no run here has {q.normalize_key(key)[:80]!r} to sort by (sort={sign}{key:.80}); "
        f"{hint}keys the runs have: {listed}"
    )


def _likeliest(key: str, known: list[str]) -> str | None:
    """The known key most like ``key``, if any is alike enough. A bare key is compared as
    written and in full (``starttime`` is most like ``start.time``, so ``time``); a key with
    its section (``stop.exit_stat``) by its name within that section first."""
    section, _, name = q.normalize_key(key).partition(".")
    bare = section == "start" and not key.startswith("start.")
    if not name.strip("."):
        return None

    def score(candidate: str) -> float:
        c_section, _, c_name = q.normalize_key(candidate).partition(".")
        alike = difflib.SequenceMatcher(None, name, c_name).ratio()
        if bare:
            alike = max(alike, difflib.SequenceMatcher(None, key, f"start.{c_name}").ratio())
        return alike + (0.05 if c_section == section else 0.0)

    best = max(known, key=score, default=None)
    return best if best is not None and score(best) >= 0.65 else None


def _known_keys(conn: sa.Connection, where: Any) -> list[str]:
    """Top-level keys of the newest runs' start documents (bare, as a query takes them),
    then their stop and summary keys (``stop.exit_status``...), most common first."""
    rows = conn.execute(
        sa.select(runs.c.start, runs.c.stop, runs.c.summary)
        .where(where)
        .order_by(runs.c.id.desc())
        .limit(SAMPLE)
    ).all()
    counts: dict[str, int] = {"time": SAMPLE + 1, "scan_id": SAMPLE + 1}
    for row in rows:
        for section, doc in zip(("start", "stop", "summary"), row, strict=True):
            doc = json.loads(doc) if isinstance(doc, str | bytes) else doc
            for name in doc or {}:
                shown = name if section == "start" else f"{section}.{name}"
                counts[shown] = counts.get(shown, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k.count("."), k))
