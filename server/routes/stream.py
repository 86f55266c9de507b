"""``/stream/single/{path}``: live updates of a node, by websocket or Server-Sent Events.

The first message describes the subscription (``type: schema``, with the node's current
``sequence``); each later one is a change with its ``sequence``. ``?start=N`` replays from
sequence N (``start=1``: everything) and then goes on live; without it only what happens
after connecting is sent. SSE sends each message's sequence as its event id, so a browser's
``EventSource`` (or ``curl -N``) resumes with ``Last-Event-ID`` after a dropped connection.

Whatever a client sends, the answer is a 4xx (SSE) or a websocket close code with a reason
that says what to do instead; a client that reads too slowly, or not at all, is cut off with
a reason naming the ``start=`` that resumes it, and never holds up ingest or other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from bluebroker.catalog import CatalogError, NotFound

from .. import tiled_live
from ..auth import api_key_problem
from ..encoders.jsonable import dumps
from ..errors import ApiError
from ..live import (
    DROP_GRACE,
    ENVELOPES,
    QUEUE_BYTES,
    Hub,
    Subscriber,
    View,
    encode,
    schema_message,
    view_of,
)

log = logging.getLogger(__name__)
router = APIRouter()
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep an idle stream open

# Websocket close codes: 1008 policy (bad API key), 1011 the server could not serve it now
# (reconnect later), 4400 bad request, 4404 not found, 4429 the subscriber fell too far
# behind (reconnect with the start= in the reason).
CLOSE_AUTH, CLOSE_UNAVAILABLE, CLOSE_BAD, CLOSE_NOT_FOUND, CLOSE_SLOW = 1008, 1011, 4400, 4404, 4429
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SEQUENCE = re.compile(r"[0-9]{1,18}")  # below 2**63, the catalog's counters' range
START_HELP = (
    "Replay the node's changes from this sequence number (1: all of them), then go on live; "
    "leave it out to get only what happens from now on."
)


def hub(conn: Request | WebSocket) -> Hub:
    state = conn.app.state
    if getattr(state, "hub", None) is None:
        limits = getattr(state, "limits", None)  # create_app's live_queue_bytes=
        state.hub = Hub(
            state.catalog,
            queue_limit=state.live_queue_limit,
            queue_bytes=getattr(limits, "live_queue_bytes", QUEUE_BYTES),
        )
    return state.hub


async def _view(conn: Request | WebSocket, path: str) -> View:
    """The view of the node at ``path``, or an ApiError (404 or 400) that says why not."""
    catalog = conn.app.state.catalog
    if CONTROL.search(path):  # websockets pass no HTTP middleware: checked here as well
        raise ApiError(404, "the path holds a control character; no node's path holds one")
    try:
        node = await asyncio.to_thread(catalog.node, path)
    except NotFound as err:
        raise ApiError(404, str(err)) from None
    except (CatalogError, ValueError) as err:  # a path the catalog cannot even look up
        raise ApiError(400, f"/{path[:100]} is not a path of this server: {err}") from None
    return view_of(node)


def _sequence(value: str, what: str) -> int:
    if not SEQUENCE.fullmatch(value):
        raise ApiError(
            400,
            f"{what} must be a sequence number, a whole number from 0 up to the node's latest "
            f"(got {value[:30]!r}); leave it out to follow from now on",
        )
    return int(value)


def _start(start: str | None, last_event_id: str | None) -> int | None:
    if start is not None:
        return _sequence(start, "start")
    if last_event_id:
        return _sequence(last_event_id, "Last-Event-ID") + 1
    return None


@router.websocket("/api/v1/stream/single/{path:path}")
async def stream_websocket(
    websocket: WebSocket,
    path: str,
    start: str | None = None,
    envelope_format: str = "json",
) -> None:
    if tiled_live.asked_by_tiled(path):  # Tiled's client: its own message shapes
        await tiled_live.serve(websocket, path, start, hub(websocket))
        return
    await websocket.accept()
    live = hub(websocket)
    try:
        problem = api_key_problem(websocket)
        if problem is not None:
            await _close(websocket, CLOSE_AUTH, problem)
            return
        if envelope_format not in ENVELOPES:
            raise ApiError(
                400, f"unknown envelope_format {envelope_format!r:.40}; use json or msgpack"
            )
        first = _start(start, None)
        view = await _view(websocket, path)
        sub, now = await live.subscribe(view, envelope_format, first)
    except ApiError as err:
        code = {404: CLOSE_NOT_FOUND, 503: CLOSE_UNAVAILABLE}.get(err.status, CLOSE_BAD)
        await _close(websocket, code, err.detail)
        return
    except Exception:  # a bug: logged, and the client told no more than to try again
        log.exception("subscribing to /%s failed", path[:200])
        await _close(websocket, CLOSE_UNAVAILABLE, "the server could not subscribe; reconnect")
        return
    catalog = websocket.app.state.catalog
    send = websocket.send_bytes if envelope_format == "msgpack" else _text(websocket)
    receiving = sending = None
    try:
        schema = await asyncio.to_thread(schema_message, catalog, view, now, first, envelope_format)
        await send(encode(schema, envelope_format))
        # One sending task per connection (not one per message: with a hundred subscribers
        # that bookkeeping cost more than the sending); the reader ends it on disconnect.
        receiving = asyncio.create_task(_until_closed(websocket, sub))
        sending = sub.sender = asyncio.create_task(_send_all(sub, send))
        await asyncio.wait({sending})
        if sub.reason is not None:  # dropped by the hub, not gone by itself
            await _close(websocket, CLOSE_SLOW, sub.reason)
    except Exception as err:  # the client went away, or the catalog did not answer
        if not _gone(err):
            log.warning("live updates of /%s ended: %s", path[:200], err)
            await _close(websocket, CLOSE_UNAVAILABLE, "the server could not go on; reconnect")
    finally:
        for task in (receiving, sending):
            if task is not None:
                task.cancel()
        live.unsubscribe(sub)


async def _send_all(sub: Subscriber, send) -> None:
    while True:
        item = await sub.get()
        if item is None:
            return
        try:
            await send(item[2])
        except Exception:  # the client is gone
            sub.end()
            return
        sub.sent(item[0])


def _gone(err: Exception) -> bool:
    """Whether an error only says that the client went away."""
    return isinstance(err, WebSocketDisconnect | RuntimeError | OSError)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with a reason (at most 123 bytes on the wire); a client that reads nothing
    cannot stop it from ending."""
    reason = reason.encode()[:123].decode(errors="ignore")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), DROP_GRACE)


def _text(websocket: WebSocket):
    async def send(message: bytes) -> None:
        await websocket.send_text(message.decode())

    return send


async def _until_closed(websocket: WebSocket, sub: Subscriber) -> None:
    """Read (and ignore) what the client sends; when it goes away, end the sending loop."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except Exception:  # a broken connection is a closed one
        return
    finally:
        sub.end()


class _EventStream(StreamingResponse):
    """Server-Sent Events of one subscriber, cut off when the hub drops a subscriber that
    cannot even take its last message."""

    def __init__(self, live: Hub, sub: Subscriber, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.live = live
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = self.sub.sender = asyncio.create_task(super().__call__(scope, receive, send))
        try:
            await asyncio.wait({task})
            if not task.cancelled():
                with contextlib.suppress(OSError):
                    task.result()
        finally:
            task.cancel()
            self.live.unsubscribe(self.sub)


@router.get(
    "/api/v1/stream/single/{path:path}",
    summary="Live updates of a node as Server-Sent Events (websocket at the same path)",
)
async def stream_sse(
    request: Request, path: str, start: str | None = Query(None, description=START_HELP)
) -> StreamingResponse:
    problem = api_key_problem(request)
    if problem is not None:
        raise ApiError(401, problem, {"WWW-Authenticate": "Apikey"})
    first = _start(start, request.headers.get("last-event-id"))
    view = await _view(request, path)
    live = hub(request)
    sub, now = await live.subscribe(view, "json", first)
    catalog = request.app.state.catalog
    try:
        schema = await asyncio.to_thread(schema_message, catalog, view, now, first, "json")
    except Exception:
        live.unsubscribe(sub)
        raise

    async def events() -> AsyncIterator[bytes]:
        yield b"event: schema\ndata: " + dumps(schema) + b"\n\n"
        while True:
            try:
                item = await asyncio.wait_for(sub.get(), KEEPALIVE)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if item is None:
                if sub.reason is not None:
                    detail = dumps({"type": "error", "detail": sub.reason})
                    yield b"event: error\ndata: " + detail + b"\n\n"
                return
            seq, kind, message = item
            yield f"id: {seq}\nevent: {kind}\ndata: ".encode() + message + b"\n\n"
            sub.sent(seq)  # the chunk before went out whole: the server resumed this generator

    return _EventStream(live, sub, events())
