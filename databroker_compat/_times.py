"""The human-friendly times Databroker 1.2.5 accepts for ``since``/``until``."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H", "%Y-%m-%d", "%Y-%m", "%Y")


def zone(name: str | None) -> tzinfo:
    """The named time zone, or this machine's local zone when ``name`` is None."""
    if name is None:
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    return ZoneInfo(name)


def to_timestamp(value: Any, tz: str | None = None) -> Any:
    """Seconds since 1970 UTC for a string in :data:`FORMATS` or a datetime (naive ones are in
    ``tz``); numbers and anything else are returned unchanged, as 1.2.5 did."""
    if isinstance(value, str):
        text = value.strip()
        for fmt in FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(
                f"failed to parse time: {text!r}; use one of "
                + ", ".join(repr(f) for f in FORMATS)
                + ", a datetime, or seconds since 1970"
            )
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    return (value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
