"""Values inside queries: text, JSON values and times as a catalog can compare them, and the
URL parameters that carry them, each refused with a :class:`QueryError` that says what is
accepted. Queries arrive from anyone
through URL parameters, and each item becomes SQL evaluated on every run of a catalog, so
what one query may hold is bounded here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

MAX_TEXT = 1000  # characters of a key, a pattern, a full-text search, a string value
MAX_VALUES = 1000  # items of an 'in' / 'notin' list, scan ids, uid prefixes
MAX_DEPTH = 16  # nesting of a list or dict value compared with metadata
MAX_QUERIES = 64  # filters in one search (each is a condition in the one WHERE)
INT64 = (-(2**63), 2**63)


class QueryError(ValueError):
    """A query that cannot be understood; the message says what is accepted."""


def check_text(value: Any, what: str) -> str:
    """``value`` as text a catalog can compare: a string without NUL or lone surrogates."""
    if not isinstance(value, str):
        raise QueryError(f"{what} must be a string, got {type(value).__name__} {value!r:.80}")
    if len(value) > MAX_TEXT:
        raise QueryError(f"{what} is {len(value)} characters long; at most {MAX_TEXT} are allowed")
    if "\x00" in value:
        raise QueryError(f"{what} cannot contain NUL characters (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(f"{what} is not valid Unicode (a lone surrogate, \\ud800)") from None
    return value


def check_value(value: Any, what: str) -> Any:
    """``value`` as a JSON value a catalog can compare: text as :func:`check_text`, integers
    within 64 bits, lists and dicts nested at most ``MAX_DEPTH`` deep and no longer than
    ``MAX_VALUES`` items in all."""
    stack, count = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_VALUES:
            raise QueryError(
                f"{what} is too large: at most {MAX_DEPTH} levels and {MAX_VALUES} items"
            )
        if isinstance(item, dict):
            for key, inner in item.items():
                check_text(key, f"a key in {what}")
                stack.append((inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            check_text(item, what)
        elif isinstance(item, int) and not isinstance(item, bool):
            if not INT64[0] <= item < INT64[1]:
                raise QueryError(f"{what} {item} does not fit in 64 bits; use a float")
        elif item is not None and not isinstance(item, bool | float):
            raise QueryError(f"{what} must be a JSON value, got {type(item).__name__}")
    return value


def to_timestamp(value: Any, tz: str | None = None) -> float | None:
    """Interpret a time given as epoch seconds, a datetime, or an ISO-8601 / human date string.

    Accepts what Databroker users type: ``'2022-03-27'``, ``'2022-03-27 09:29'``,
    ``'2022-03-27T09:29:00+02:00'``, or a float. Naive times are taken in ``tz`` (an IANA name)
    or, without it, in the local time zone of this machine.
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = _parse_loose_date(text)
    if isinstance(value, datetime):
        try:
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone(tz)) if tz is not None else value.astimezone()
            return value.timestamp()
        except (OverflowError, ValueError, OSError):
            raise QueryError(f"time {value!r:.80} is out of range; use years 1970-9999") from None
    raise QueryError(
        f"cannot read {value!r:.80} as a time; use epoch seconds or '2022-03-27 09:29'"
    )


def _parse_loose_date(text: str) -> datetime:
    for fmt in ("%Y", "%Y-%m", "%Y-%m-%d %H", "%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise QueryError(f"cannot read {text!r:.80} as a time; use ISO 8601 such as '2022-03-27 09:29'")


def zone(name: Any) -> Any:
    """The IANA time zone ``name`` (e.g. 'Europe/Berlin'), or a QueryError saying so."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    check_text(name, "the time zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise QueryError(
            f"unknown time zone {name!r:.80}; use an IANA name such as 'America/New_York' or 'UTC'"
        ) from None


def utc_iso(ts: float) -> str:
    """ISO-8601 UTC text for an epoch time, for summaries people read."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


# Tiled's client sends the text fields of a query plain (``key=plan_name``) and JSON-encodes
# only values; ours JSON-encodes everything (``key="plan_name"``). Both are accepted: a text
# field is taken as JSON when it is a JSON string (or null), else as the text it is.
TEXT_FIELDS = frozenset({"key", "text", "pattern", "operator", "timezone", "duplicates"})


def parse_field(name: str, raw: str, what: str) -> Any:
    """One query parameter as sent by our client (JSON) or by Tiled's (plain text fields)."""
    if name in TEXT_FIELDS:
        if raw == "null":  # ours, for a field left unset (TimeRange's timezone)
            return None
        if raw.startswith('"'):
            value = parse_json(raw, what)
            if isinstance(value, str):
                return value
        return raw
    return parse_json(raw, what)


def parse_json(raw: str, what: str) -> Any:
    """JSON from a URL, or a QueryError naming the parameter (never a bare decode error)."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise QueryError(f"{what} must be JSON (strings in quotes), got {raw!r:.80}") from None


def parse_scan_id(text: str) -> int:
    """One of Tiled's comma-separated scan ids."""
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"scan ids must be whole numbers, got {text!r:.80}") from None


def parse_list(params: Mapping[str, str], field: str, convert: Any) -> list:
    """A JSON list (ours) or comma-separated values (Tiled's: ``scan_ids=3,4``)."""
    if field not in params:
        raise QueryError(f"parameter {field!r} is missing; give a JSON list or a,b,c")
    raw = params[field]
    if raw.lstrip().startswith(("[", '"')):
        value = parse_json(raw, f"parameter {field!r}")
        return value if isinstance(value, list) else [value]
    if len(raw) > 64 * MAX_VALUES:
        raise QueryError(f"parameter {field!r} is too long; give at most {MAX_VALUES} values")
    return [convert(part.strip()) for part in raw.split(",")]
