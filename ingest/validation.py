"""Validate documents against event-model's JSON schemas, quickly.

event-model's own validators (jsonschema) cost ~200 us per event, too slow for a detector's
event rate. The same schemas compiled by fastjsonschema cost ~3 us. A document the fast path
rejects is re-checked by event-model's validator, which is authoritative (it accepts numpy
arrays where the schema says "array") and gives the message we report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import event_model
import fastjsonschema

from .errors import InvalidDocument
from .legacy import modernize
from .names import names_problem

NAMES = (
    "start",
    "descriptor",
    "event",
    "event_page",
    "resource",
    "datum",
    "datum_page",
    "stream_resource",
    "stream_datum",
    "stop",
)

_fast: dict[str, Callable[[Any], Any]] = {}


def _fast_validator(name: str) -> Callable[[Any], Any]:
    if name not in _fast:
        schema = event_model.schemas[event_model.DocumentNames[name]]
        check = fastjsonschema.compile(schema, use_default=False)
        allowed = _evaluated_keys(schema)
        if allowed is not None:
            check = _closed(check, allowed)
        _fast[name] = check
    return _fast[name]


def _evaluated_keys(schema: dict) -> frozenset[str] | None:
    """The keys a schema with ``unevaluatedProperties: false`` allows, or None if it is open.

    fastjsonschema does not implement ``unevaluatedProperties`` (draft 2019-09), which
    event-model uses to close event, event_page and resource documents over their ``allOf``
    parts; without this check extra keys would slip through that event-model refuses."""
    if schema.get("unevaluatedProperties") is not False:
        return None
    keys = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        ref = part.get("$ref", "")
        target = schema["$defs"][ref.rsplit("/", 1)[-1]] if ref.startswith("#/$defs/") else part
        keys |= set(target.get("properties", {}))
    return frozenset(keys)


def _closed(check: Callable[[Any], Any], allowed: frozenset[str]) -> Callable[[Any], Any]:
    def closed(doc: Any) -> Any:
        check(doc)
        if not doc.keys() <= allowed:
            raise fastjsonschema.JsonSchemaException("unevaluated properties")
        return doc

    return closed


_EVENT_KEYS = frozenset(("uid", "descriptor", "seq_num", "time", "data", "timestamps", "filled"))
_EVENT_REQUIRED = _EVENT_KEYS - {"filled"}


def _plainly_valid_event(doc: dict) -> bool:
    """True for an event whose validity is plain from exact types alone (almost all of
    them); anything else goes through the schema. Half the cost of the compiled schema, which
    matters at detector rates."""
    keys = doc.keys()
    if not (_EVENT_REQUIRED <= keys <= _EVENT_KEYS):
        return False
    if not (
        type(doc["uid"]) is str
        and type(doc["descriptor"]) is str
        and "\x00" not in doc["uid"]  # else the slow path says why it is refused
        and type(doc["seq_num"]) is int
        and type(doc["time"]) in (float, int)
        and type(doc["data"]) is dict
        and type(doc["timestamps"]) is dict
    ):
        return False
    filled = doc.get("filled")
    if filled is None:
        return "filled" not in keys
    return type(filled) is dict and all(type(v) in (bool, str) for v in filled.values())


def validate(name: str, doc: Any) -> dict:
    """Return the document (in its modern form) or raise :class:`InvalidDocument`."""
    if name == "event" and type(doc) is dict and _plainly_valid_event(doc):
        return doc
    if name not in NAMES:
        raise InvalidDocument(
            str(name), doc, f"unknown document name; expected one of {', '.join(NAMES)}"
        )
    if not isinstance(doc, dict):
        raise InvalidDocument(name, doc, f"a document must be a mapping, got {type(doc).__name__}")
    doc = modernize(name, doc)
    try:
        _fast_validator(name)(doc)
    except fastjsonschema.JsonSchemaException:
        try:
            event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)
        except Exception as err:  # jsonschema.ValidationError, with a readable message
            where = "/".join(str(p) for p in getattr(err, "absolute_path", ()))
            message = getattr(err, "message", str(err))
            raise InvalidDocument(
                name,
                doc,
                f"does not match event-model's schema{' at ' + where if where else ''}: {message}",
            ) from None
    problem = names_problem(name, doc)
    if problem:
        raise InvalidDocument(name, doc, problem)
    return doc
