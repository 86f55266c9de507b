"""The bluesky-kafka wire format: a msgpack array ``[name, doc]``, numpy arrays encoded by
msgpack-numpy, one document per Kafka message; and the topic naming convention
``<beamline>.bluesky.runengine.documents``."""

from __future__ import annotations

import functools
import re
from typing import Any

from bluebroker import packing

TOPIC_SUFFIX = ".bluesky.runengine.documents"
SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")  # as the catalog's (catalog/tree.py)


class WireError(ValueError):
    """Bytes that are not a bluesky-kafka document message; the message says why."""


def encode(name: str, doc: dict) -> bytes:
    return packing.packb((name, doc))


def decode(payload: bytes | None) -> tuple[str, Any]:
    """``(name, doc)`` from a message value, or :class:`WireError`."""
    if payload is None:
        raise WireError("empty message (no value); expected msgpack [name, doc]")
    try:
        pair = packing.unpackb(payload)
    except packing.PayloadRefused as err:  # pickles, unsafe dtypes, garbage: says which
        raise WireError(str(err)) from None
    except Exception as err:  # msgpack raises several types for garbage
        raise WireError(f"not msgpack ({type(err).__name__}: {err})") from None
    if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)):
        raise WireError(f"msgpack but not a [name, doc] pair: got {type(pair).__name__}")
    return pair[0], pair[1]


def document_bytes(payload: bytes, name: str) -> bytes | None:
    """The msgpack bytes of the document inside a ``[name, doc]`` message, cut out without
    re-encoding (the replay log keeps them as received), or None for an unusual layout."""
    size = len(name)
    if (
        size < 32
        and payload[:1] == b"\x92"
        and payload[1] == 0xA0 | size
        and payload[2 : 2 + size] == name.encode()
    ):
        return payload[2 + size :]
    return None


def topic_for(beamline: str) -> str:
    return f"{beamline}{TOPIC_SUFFIX}"


@functools.lru_cache(maxsize=1024)  # called for every message; topics are few
def catalog_path(topic: str, template: str = "{beamline}/raw") -> str:
    """The catalog path for a topic: ``bmm.bluesky.runengine.documents`` -> ``bmm/raw``.

    ``{beamline}`` is the topic's first dot-separated part, ``{topic}`` the whole name with
    dots as underscores (for topics outside the convention). Anyone who may create topics
    chooses these names, so a topic that gives no valid path (no beamline part, a segment
    starting with '-' or '.') raises :class:`WireError` and its messages are dead-lettered
    rather than landing in another catalog or stopping the worker.
    """
    beamline = topic.split(".", 1)[0]
    if not beamline and "{beamline}" in template:
        raise WireError(
            f"topic {topic!r} has no beamline part before its first '.'; "
            "publish to '<beamline>.bluesky.runengine.documents'"
        )
    try:
        path = template.format(
            beamline=re.sub(r"[^A-Za-z0-9_.-]", "_", beamline),
            topic=re.sub(r"[^A-Za-z0-9_-]", "_", topic),
        )
    except (KeyError, IndexError, ValueError) as err:
        raise WireError(
            f"catalog path template {template!r} is not usable ({err}); "
            "use {beamline} and {topic}, e.g. '{beamline}/raw'"
        ) from None
    parts = path.split("/")
    if len(path) > 512 or not all(SEGMENT.match(part) for part in parts):
        raise WireError(
            f"topic {topic!r} maps to {path!r}, which is not a catalog path (segments of "
            "letters, digits, '_', '.', '-', not starting with '.' or '-', 512 characters at "
            "most); rename the topic"
        )
    return path
