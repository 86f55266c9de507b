"""Metadata queries: the one vocabulary that the catalog, the server and the client share.

A query is a small frozen dataclass. The catalog compiles it into SQL; the client encodes it
into URL parameters (``filter[<name>][condition][<field>]=...``) and the server decodes it back
with :func:`from_params`. Keys address run metadata: ``start.plan_name``, ``stop.exit_status``,
``summary.duration``. A bare key such as ``plan_name`` means ``start.plan_name``, because that is
what a scientist searching runs almost always means.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from .query_values import (
    INT64,
    MAX_VALUES,
    QueryError,
    check_text,
    check_value,
    parse_field,
    parse_list,
    parse_scan_id,
    to_timestamp,
    utc_iso,
    zone,
)

__all__ = [
    "QUERIES",
    "Comparison",
    "Contains",
    "Eq",
    "FullText",
    "In",
    "Key",
    "NotEq",
    "NotIn",
    "PartialUID",
    "Query",
    "QueryError",
    "Regex",
    "ScanID",
    "TimeRange",
    "normalize_key",
    "to_timestamp",
    "utc_iso",
]

SECTIONS = ("start", "stop", "summary")


def normalize_key(key: str) -> str:
    """Return ``section.path`` for a metadata key, defaulting the section to ``start``."""
    if not isinstance(key, str) or not key.strip(". "):
        raise QueryError(
            f"a query key must be a non-empty string such as 'plan_name', got {key!r:.80}"
        )
    check_text(key, "a query key")
    head = key.split(".", 1)[0]
    return key if head in SECTIONS and "." in key else f"start.{key}"


@dataclasses.dataclass(frozen=True)
class Query:
    """Base class; subclasses name themselves for the URL with ``name``."""

    name: ClassVar[str] = ""

    def encode(self) -> dict[str, str]:
        """Encode the fields as strings (JSON for values) for URL parameters."""
        return {f.name: json.dumps(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def __post_init__(self) -> None:
        if "key" in self.__dataclass_fields__:
            normalize_key(self.key)  # type: ignore[attr-defined]
        if "value" in self.__dataclass_fields__:
            check_value(self.value, f"the value of query {self.name!r}")  # type: ignore[attr-defined]

    @classmethod
    def decode(cls, params: Mapping[str, str]) -> Query:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise QueryError(
                f"query {cls.name!r} has no parameter {unknown[0]!r:.80}; its parameters: "
                f"{', '.join(sorted(known))}"
            )
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in params:
                if f.default is dataclasses.MISSING:
                    raise QueryError(f"query {cls.name!r} needs the parameter {f.name!r}")
                continue
            kwargs[f.name] = parse_field(
                f.name, params[f.name], f"query {cls.name!r} parameter {f.name!r}"
            )
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class Eq(Query):
    """Metadata ``key`` equals ``value``."""

    key: str
    value: Any
    name: ClassVar[str] = "eq"


@dataclasses.dataclass(frozen=True)
class NotEq(Query):
    """Metadata ``key`` differs from ``value`` (runs without the key match too, as in Mongo)."""

    key: str
    value: Any
    name: ClassVar[str] = "noteq"


OPERATORS = ("lt", "le", "gt", "ge")


@dataclasses.dataclass(frozen=True)
class Comparison(Query):
    """``key <operator> value`` with operator one of lt, le, gt, ge (numbers or strings)."""

    operator: str
    key: str
    value: Any
    name: ClassVar[str] = "comparison"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.operator, str) or self.operator not in OPERATORS:
            raise QueryError(
                f"comparison operator must be one of {', '.join(OPERATORS)}, "
                f"got {self.operator!r:.40}"
            )


@dataclasses.dataclass(frozen=True)
class Contains(Query):
    """A list at ``key`` contains ``value``, or a string at ``key`` contains it as a substring."""

    key: str
    value: Any
    name: ClassVar[str] = "contains"


@dataclasses.dataclass(frozen=True)
class In(Query):
    """Metadata ``key`` equals one of ``value`` (a list)."""

    key: str
    value: list
    name: ClassVar[str] = "in"

    def __post_init__(self) -> None:
        if not isinstance(self.value, list | tuple):
            raise QueryError(f"'in' needs a list of values, got {self.value!r:.80}")
        if len(self.value) > MAX_VALUES:
            raise QueryError(
                f"'in' lists hold at most {MAX_VALUES} values, got {len(self.value)}; "
                "split the search, or search by a range (comparison)"
            )
        normalize_key(self.key)
        for value in self.value:
            check_value(value, f"a value of query {self.name!r}")
        object.__setattr__(self, "value", list(self.value))


@dataclasses.dataclass(frozen=True)
class NotIn(In):
    """Metadata ``key`` equals none of ``value`` (runs without the key match too)."""

    name: ClassVar[str] = "notin"


@dataclasses.dataclass(frozen=True)
class FullText(Query):
    """Every word of ``text`` appears somewhere in the run's start or stop metadata."""

    text: str
    name: ClassVar[str] = "fulltext"

    def __post_init__(self) -> None:
        check_text(self.text, "the full-text search")


@dataclasses.dataclass(frozen=True)
class Regex(Query):
    """The string at ``key`` matches the regular expression ``pattern``."""

    key: str
    pattern: str
    case_sensitive: bool = True
    name: ClassVar[str] = "regex"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_text(self.pattern, "a regex pattern")
        if not isinstance(self.case_sensitive, bool):
            raise QueryError(
                f"case_sensitive must be true or false, got {self.case_sensitive!r:.40}"
            )


@dataclasses.dataclass(frozen=True)
class TimeRange(Query):
    """Runs that started at or after ``since`` and before ``until`` (either may be None)."""

    since: Any = None
    until: Any = None
    timezone: str | None = None
    name: ClassVar[str] = "time_range"

    def __post_init__(self) -> None:
        for bound in (self.since, self.until):
            if bound is not None and not isinstance(bound, str | int | float | datetime):
                raise QueryError(
                    f"time_range takes times as text or epoch seconds, not {bound!r:.80}"
                )
            if isinstance(bound, str):
                check_text(bound, "a time_range bound")
            if isinstance(bound, int) and not isinstance(bound, bool):
                check_value(bound, "a time_range bound")
        if self.timezone is not None:
            zone(self.timezone)
        self.bounds()  # fail now, at the request, not at the first read

    def bounds(self) -> tuple[float | None, float | None]:
        return to_timestamp(self.since, self.timezone), to_timestamp(self.until, self.timezone)


DUPLICATES = ("latest", "all")


@dataclasses.dataclass(frozen=True)
class ScanID(Query):
    """Runs with one of the given scan_ids; ``duplicates='latest'`` keeps the newest of each."""

    scan_ids: tuple = ()
    duplicates: str = "latest"
    name: ClassVar[str] = "scan_id"

    def __init__(self, *scan_ids: int, duplicates: str = "latest") -> None:
        if len(scan_ids) == 1 and isinstance(scan_ids[0], list | tuple):
            scan_ids = tuple(scan_ids[0])
        if len(scan_ids) > MAX_VALUES:
            raise QueryError(f"at most {MAX_VALUES} scan ids in one query, got {len(scan_ids)}")
        for s in scan_ids:
            if isinstance(s, bool) or not isinstance(s, int) or not INT64[0] <= s < INT64[1]:
                raise QueryError(f"scan ids must be 64-bit integers, got {s!r:.80}")
        if not isinstance(duplicates, str):
            raise QueryError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r:.80}")
        if duplicates not in DUPLICATES:
            raise QueryError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
        object.__setattr__(self, "scan_ids", tuple(scan_ids))
        object.__setattr__(self, "duplicates", duplicates)

    def encode(self) -> dict[str, str]:
        return {
            "scan_ids": json.dumps(list(self.scan_ids)),
            "duplicates": json.dumps(self.duplicates),
        }

    @classmethod
    def decode(cls, params: Mapping[str, str]) -> ScanID:
        unknown = sorted(set(params) - {"scan_ids", "duplicates"})
        if unknown:
            raise QueryError(f"query 'scan_id' has no parameter {unknown[0]!r:.80}")
        return cls(
            *parse_list(params, "scan_ids", parse_scan_id),
            duplicates=parse_field("duplicates", params.get("duplicates", "latest"), "duplicates"),
        )


@dataclasses.dataclass(frozen=True)
class PartialUID(Query):
    """Runs whose start uid begins with one of the given prefixes."""

    partial_uids: tuple = ()
    name: ClassVar[str] = "partial_uid"

    def __init__(self, *partial_uids: str) -> None:
        if len(partial_uids) == 1 and isinstance(partial_uids[0], list | tuple):
            partial_uids = tuple(partial_uids[0])
        if len(partial_uids) > MAX_VALUES:
            raise QueryError(f"at most {MAX_VALUES} uid prefixes in one query")
        for p in partial_uids:
            if not isinstance(p, str) or not p:
                raise QueryError(f"partial uids must be non-empty strings, got {p!r:.80}")
            check_text(p, "a uid prefix")
        object.__setattr__(self, "partial_uids", tuple(partial_uids))

    def encode(self) -> dict[str, str]:
        return {"partial_uids": json.dumps(list(self.partial_uids))}

    @classmethod
    def decode(cls, params: Mapping[str, str]) -> PartialUID:
        unknown = sorted(set(params) - {"partial_uids"})
        if unknown:
            raise QueryError(f"query 'partial_uid' has no parameter {unknown[0]!r:.80}")
        return cls(*parse_list(params, "partial_uids", str))


QUERIES: dict[str, type[Query]] = {
    q.name: q
    for q in (
        Eq,
        NotEq,
        Comparison,
        Contains,
        In,
        NotIn,
        FullText,
        Regex,
        TimeRange,
        ScanID,
        PartialUID,
    )
}


class Key:
    """Sugar: ``Key('plan_name') == 'scan'`` builds ``Eq('plan_name', 'scan')``."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __eq__(self, value: Any) -> Eq:  # type: ignore[override]
        return Eq(self.key, value)

    def __ne__(self, value: Any) -> NotEq:  # type: ignore[override]
        return NotEq(self.key, value)

    def __lt__(self, value: Any) -> Comparison:
        return Comparison("lt", self.key, value)

    def __le__(self, value: Any) -> Comparison:
        return Comparison("le", self.key, value)

    def __gt__(self, value: Any) -> Comparison:
        return Comparison("gt", self.key, value)

    def __ge__(self, value: Any) -> Comparison:
        return Comparison("ge", self.key, value)

    def in_(self, values: list) -> In:
        return In(self.key, list(values))

    def not_in(self, values: list) -> NotIn:
        return NotIn(self.key, list(values))

    def contains(self, value: Any) -> Contains:
        return Contains(self.key, value)

    def regex(self, pattern: str, case_sensitive: bool = True) -> Regex:
        return Regex(self.key, pattern, case_sensitive)

    __hash__ = None  # type: ignore[assignment]


def __getattr__(name: str) -> Any:
    """The URL codec lives in :mod:`bluebroker.query_params`; ``queries.to_params`` and
    ``queries.from_params`` keep working for code written before it moved."""
    if name in ("to_params", "from_params", "LOOKUPS"):
        from . import query_params

        return getattr(query_params, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
