"""Limits on what one request may ask of the server, each refused with a status that says what
to do instead.

A request body is counted while it streams in (the Content-Length header is checked first, and
a chunked body is cut off as soon as it passes the limit), so a 200 MB post is refused
without ever being held in memory. Decoded bodies are walked once, without recursion, to
refuse nesting, text and integers that the catalog could not store.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

MiB = 1024 * 1024
INT64 = (-(2**63), 2**64)  # signed and unsigned 64-bit integers are both storable
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in a URL's path: never part of a node's name


@dataclasses.dataclass(frozen=True)
class Limits:
    """The server's limits; every one is a ``create_app`` keyword of the same name."""

    max_body_bytes: int = 64 * MiB  # a POST of documents; larger batches: split them
    max_depth: int = 64  # nesting of JSON / msgpack bodies (documents nest a dozen deep)
    max_url_bytes: int = 32 * 1024  # path plus query; under uvicorn's own 64 KiB (plain 400)
    max_offset: int = 10_000_000  # page[offset]; deeper pages: narrow the search or sort
    max_read_bytes: int = 1024 * MiB  # one full read of an array or a table, before encoding
    max_image_size: int = 8192  # max_size of PNG / TIFF pictures, pixels per side
    search_timeout: float = 10.0  # seconds for one search statement in the catalog
    live_queue_bytes: int = 64 * MiB  # a live subscriber's unsent messages; then: resume

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not value > 0:
                raise ValueError(f"limit {field.name} must be a positive number, got {value!r}")


def limits(app: Any) -> Limits:
    """The limits of the app serving a request (``request.app``)."""
    return app.state.limits


class _TooLarge(Exception):
    pass


class RequestLimitMiddleware:
    """Refuse over-long URLs (414) and bodies over ``max_body_bytes`` (413) before the route
    reads them; the connection is closed after a 413 so the rest of the body is never read."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_url_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_url = max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url_bytes > self.max_url:
            await _refuse(
                send,
                414,
                f"the URL is {url_bytes} bytes, over this server's limit of {self.max_url}; "
                "send fewer or shorter filters (split the search)",
            )
            return
        control = _CONTROL.search(scope.get("path", ""))
        if control:  # Python's '$' matches before a final line break: 'bmm\n' would route as 'bmm'
            char = control.group()
            name = "NUL" if char == "\x00" else f"U+{ord(char):04X}"
            posted = scope.get("method") == "POST"
            await _refuse(
                send,
                400 if posted else 404,
                f"the path holds a control character ({name}); no node's path holds one"
                + ("; catalog paths are letters, digits, '_', '-' and '.'" if posted else ""),
            )
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _refuse(send, 413, self._too_large(f"{declared} bytes"), close=True)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:
                raise
            await _refuse(send, 413, self._too_large(f"over {self.max_body} bytes"), close=True)

    def _too_large(self, size: str) -> str:
        return (
            f"the request body is {size}, over this server's limit of {self.max_body} bytes; "
            "send the documents in smaller batches"
        )


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, status: int, detail: str, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_body(obj: Any, max_depth: int) -> None:
    """Refuse (400) a decoded body nested deeper than ``max_depth``, or holding text that is
    not valid Unicode (lone surrogates, from JSON ``\\ud800`` escapes) or integers beyond 64
    bits: the catalog could store none of them."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list | tuple):
            if depth > max_depth:
                raise ApiError(
                    400,
                    f"the body nests deeper than {max_depth} levels; documents are flat "
                    "dictionaries of values and arrays, send them as such",
                )
            if isinstance(value, dict):
                for key in value:
                    _check_scalar(key)
                    stack.append((value[key], depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        else:
            _check_scalar(value)


def _check_scalar(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                400,
                "the body holds text that is not valid Unicode (a lone surrogate escape "
                "such as \\ud800); send UTF-8 text",
            ) from None
    elif isinstance(value, int) and not INT64[0] <= value < INT64[1]:
        raise ApiError(
            400, f"integer {value} does not fit in 64 bits; send it as a float or a string"
        )
