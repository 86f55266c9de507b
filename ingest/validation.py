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
        _fast[name] = fastjsonschema.compile(
            event_model.schemas[event_model.DocumentNames[name]], use_default=False
        )
    return _fast[name]


def validate(name: str, doc: Any) -> dict:
    """Return the document (in its modern form) or raise :class:`InvalidDocument`."""
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
    return doc
