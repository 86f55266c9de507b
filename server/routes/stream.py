"""``/stream/single/{path}``: live updates of a node, by websocket or Server-Sent Events.

The first message describes the subscription (``type: schema``, with the node's current
``sequence``); each later one is a change with its ``sequence``. ``?start=N`` replays from
sequence N (``start=1``: everything) and then goes on live; without it only what happens
after connecting is sent. SSE sends each message's sequence as its event id, so a browser's
``EventSource`` (or ``curl -N``) resumes with ``Last-Event-ID`` after a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from bluebroker.catalog import CatalogError

from ..auth import api_key_problem
from ..encoders.jsonable import dumps
from ..errors import ApiError
from ..live import ENVELOPES, Hub, Subscriber, encode, schema_message, view_of

router = APIRouter()
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep an idle stream open

# Websocket close codes: 1008 policy (bad API key), 4400 bad request, 4404 not found,
# 4429 the subscriber fell too far behind (reconnect with the start= in the reason).
CLOSE_AUTH, CLOSE_BAD, CLOSE_NOT_FOUND, CLOSE_SLOW = 1008, 4400, 4404, 4429


def hub(conn: Request | WebSocket) -> Hub:
    state = conn.app.state
    if getattr(state, "hub", None) is None:
        state.hub = Hub(state.catalog, queue_limit=state.live_queue_limit)
    return state.hub


async def _view(conn: Request | WebSocket, path: str):
    catalog = conn.app.state.catalog
    node = await asyncio.to_thread(catalog.node, path)
    return view_of(node)


def _start(start: int | None, last_event_id: str | None) -> int | None:
    if start is not None:
        return start
    if last_event_id:
        try:
            return int(last_event_id) + 1
        except ValueError:
            raise ApiError(
                400, f"Last-Event-ID {last_event_id!r} is not a sequence number"
            ) from None
    return None


@router.websocket("/api/v1/stream/single/{path:path}")
async def stream_websocket(
    websocket: WebSocket,
    path: str,
    start: int | None = Query(None, ge=0),
    envelope_format: str = "json",
) -> None:
    await websocket.accept()
    problem = api_key_problem(websocket)
    code = CLOSE_AUTH if problem else CLOSE_BAD
    if problem is None and envelope_format not in ENVELOPES:
        problem = f"unknown envelope_format {envelope_format!r}; use json or msgpack"
    if problem is None:
        try:
            view = await _view(websocket, path)
        except ApiError as err:
            problem = err.detail
        except CatalogError as err:  # NotFound and friends
            code, problem = CLOSE_NOT_FOUND, str(err)
    if problem is not None:
        await websocket.close(code=code, reason=problem[:120])
        return
    live = hub(websocket)
    sub, now = await live.subscribe(view, envelope_format, start)
    catalog = websocket.app.state.catalog
    try:
        schema = await asyncio.to_thread(schema_message, catalog, view, now, start, envelope_format)
        send = websocket.send_bytes if envelope_format == "msgpack" else _text(websocket)
        await send(encode(schema, envelope_format))
        # One plain loop per connection (no task per message: with a hundred subscribers
        # that bookkeeping cost more than the sending). The reader ends it on disconnect.
        receiving = asyncio.create_task(_until_closed(websocket, sub))
        while True:
            item = await sub.queue.get()
            if item is None:
                break
            await send(item[2])
        receiving.cancel()
        if sub.reason is not None:  # dropped by the hub, not gone by itself
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=CLOSE_SLOW, reason=sub.reason[:120]), 5)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        live.unsubscribe(sub)


def _text(websocket: WebSocket):
    async def send(message: bytes) -> None:
        await websocket.send_text(message.decode())

    return send


async def _until_closed(websocket: WebSocket, sub: Subscriber) -> None:
    """Read (and ignore) what the client sends; when it goes away, end the sending loop."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            sub.queue.put_nowait(None)
            return


@router.get(
    "/api/v1/stream/single/{path:path}",
    summary="Live updates of a node as Server-Sent Events (websocket at the same path)",
)
async def stream_sse(
    request: Request, path: str, start: int | None = Query(None, ge=0)
) -> StreamingResponse:
    problem = api_key_problem(request)
    if problem is not None:
        raise ApiError(401, problem, {"WWW-Authenticate": "Apikey"})
    start = _start(start, request.headers.get("last-event-id"))
    view = await _view(request, path)
    live = hub(request)
    sub, now = await live.subscribe(view, "json", start)
    catalog = request.app.state.catalog
    try:
        schema = await asyncio.to_thread(schema_message, catalog, view, now, start, "json")
    except Exception:
        live.unsubscribe(sub)
        raise

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"event: schema\ndata: " + dumps(schema) + b"\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if item is None:
                    detail = dumps({"type": "error", "detail": sub.reason})
                    yield b"event: error\ndata: " + detail + b"\n\n"
                    return
                seq, kind, message = item
                yield f"id: {seq}\nevent: {kind}\ndata: ".encode() + message + b"\n\n"
        finally:
            live.unsubscribe(sub)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
