"""Live updates in Tiled's own message shapes, for Tiled's Python client (``tiled`` 0.2.x).

Tiled's client subscribes at the same route as ours (``/api/v1/stream/single/{path}``,
``envelope_format=msgpack``, ``start=N`` to replay) and sends nothing that ours does not,
but for one thing: it joins the path's segments with ``//`` (``bmm//raw``). A path with an
empty segment therefore gets Tiled's messages; every other subscriber keeps ours, byte for
byte. The hub (``live.py``) is the same: Tiled's subscriber is an ordinary msgpack
subscriber of the node, and each of our messages is translated here on its way out:

======================  ======================  =========================================
node (Tiled's family)   our change              Tiled's message
======================  ======================  =========================================
catalog of runs         run-created             container-child-created (the run)
catalog of runs         run-stopped             container-child-metadata-updated
run                     stream-created          container-child-created (the stream)
data, timestamps        descriptor-added        container-child-created (each new key)
column (array)          rows-appended           array-data (raw bytes), or array-ref (a
                                                link) when large or not plain numbers
run and below           run-stopped             close 1000 (Tiled: "Producer ended
                                                stream"), after what came before it
======================  ======================  =========================================

Other changes have no Tiled message and are skipped (their sequence numbers with them:
Tiled's client only resumes from the last one it saw). What cannot be subscribed to is
refused at the handshake with a 4xx and a one-line reason, as Tiled's server does, so
that Tiled's client raises instead of reconnecting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import UTC, datetime
from typing import Any

import msgpack
import numpy as np
import orjson
from fastapi import WebSocket
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect

from bluebroker import packing
from bluebroker.catalog import Catalog, CatalogError, NotFound
from bluebroker.catalog.changes import since
from bluebroker.catalog.external import ExternalArray
from bluebroker.catalog.tables import EventTable
from bluebroker.structures import ArrayStructure

from .auth import api_key_problem
from .encoders.jsonable import dumps
from .envelope import data_sources, resource
from .errors import ApiError
from .live import Hub, Subscriber, View, schema_message, view_of
from .live_subscriber import DROP_GRACE
from .tiled_frames import as_tiled_writes

log = logging.getLogger(__name__)

# Tiled's client refuses (and stops for good on) a message over its max_size, 1 MB unless
# its user raised it: larger appends go as array-ref, a link it fetches.
INLINE_PAYLOAD = 512 * 1024
PLAIN_KINDS = "biuf"  # dtypes whose raw bytes Tiled's client decodes with the schema's type
CLOSE_SLOW, CLOSE_UNAVAILABLE = 4429, 1011
ENDED = "the run stopped: no more updates"


def asked_by_tiled(path: str) -> bool:
    """Whether the subscriber is Tiled's client: it joins segments with ``//``, which no
    path of ours has."""
    return "//" in f"/{path}"


async def serve(websocket: WebSocket, path: str, start: str | None, live: Hub) -> None:
    """The whole subscription of Tiled's client: refused at the handshake, or its schema
    message, the translated updates, and the close when the run stops."""
    catalog = websocket.app.state.catalog
    try:
        problem = api_key_problem(websocket)
        if problem is not None:
            raise ApiError(401, problem)
        first = _start(start)
        node = await asyncio.to_thread(_node, catalog, path)
        tr = Translator(catalog, tiled_view(node), _api(websocket))
        # What is there already is read before subscribing: what comes after is told
        await asyncio.to_thread(tr.prepare)
        sub, now = await live.subscribe(tr.view, "msgpack", first)
    except ApiError as err:
        await _deny(websocket, err.status, err.detail)
        return
    except Exception:  # a bug: logged, and the client told no more than to try again
        log.exception("Tiled's client subscribing to /%s failed", path[:200])
        await _deny(websocket, 503, "the server could not subscribe; connect again")
        return
    tasks: list[asyncio.Task] = []
    try:
        await websocket.accept()
        schema, ended = await asyncio.to_thread(tr.schema, now, first)
        await websocket.send_bytes(schema)
        if not ended:
            # Sending is a task of its own, which the hub cancels when a dropped
            # subscriber's connection cannot even take its last message.
            sending = sub.sender = asyncio.create_task(_pump(websocket, sub, tr))
            tasks = [sending, asyncio.create_task(_until_closed(websocket, sub))]
            await asyncio.wait({sending})
            ended = not sending.cancelled() and sending.result()
        if ended:
            await _close(websocket, 1000, ENDED)
        elif sub.reason is not None:  # dropped by the hub: Tiled's client reconnects
            await _close(websocket, CLOSE_SLOW, sub.reason)
    except Exception as err:  # the client went away, or the catalog did not answer
        if not isinstance(err, RuntimeError | OSError | WebSocketDisconnect):
            log.warning("Tiled live updates of /%s ended: %s", path[:200], err)
            await _close(websocket, CLOSE_UNAVAILABLE, "the server could not go on; reconnect")
    finally:
        for task in tasks:
            task.cancel()
        live.unsubscribe(sub)


def tiled_view(node: Any) -> View:
    """What Tiled's client watches at a node: a stream's data and timestamps are containers
    to it (xarray datasets), so only their new keys concern it, not their rows."""
    if isinstance(node, EventTable):
        return View("stream", node.stream.id, node.path, "container", node.kind)
    view = view_of(node)
    if view.scope not in ("catalog", "run", "stream"):
        raise ApiError(
            400,
            f"/{'/'.join(node.path)} has live updates for bluebroker's client only (a "
            "served folder); Tiled's client can subscribe to catalogs of runs and below",
        )
    return view


class Translator:
    """Our messages of one subscription, as Tiled's: one or none per change."""

    def __init__(self, catalog: Catalog, view: View, api: str) -> None:
        self.catalog = catalog
        self.view = view
        self.api = api
        self.here = "/".join(view.path)
        self.keys: set[str] = set()  # a dataset's variables already there
        self.array: dict[str, Any] = {}  # a column's structure, as its schema said
        self.framed = False  # its rows' shape settled (TiledWriter's frame axis or not)

    def prepare(self) -> None:
        """Read what the subscriber's node has now: a column's structure, a dataset's keys
        (a key added after this is announced; one added before is not)."""
        node = self.catalog.node(self.view.path)
        if self.view.family == "array":
            self._frame(node)
        elif self.view.table is not None:
            self.keys = set(node.columns)

    def schema(self, now: int, start: int | None) -> tuple[bytes, bool]:
        """The first message, and whether the subscription is over already (the run has
        stopped and nothing before the stop is to be replayed)."""
        view = self.view
        ours = schema_message(self.catalog, view, now, start, "msgpack")
        first: dict[str, Any] = {"type": "container-schema", "version": 1}
        if view.family == "array":
            first = {"type": "array-schema", "version": 1, "data_type": self.array["data_type"]}
        done = False
        if ours.get("stopped") and (start is None or start > now):
            with self.catalog.connect() as conn:
                last = since(conn, view.scope, view.node_id, now - 1, 1)
            done = bool(last) and last[-1].kind == "run-stopped"
        return _pack(first), done

    def translate(self, raw: bytes) -> tuple[list[bytes], bool]:
        """Tiled's messages for one of ours, and whether it ended the subscription."""
        msg = packing.unpackb(raw)
        kind, view = msg["type"], self.view
        if kind == "run-stopped" and view.scope != "catalog":
            return [], True
        if view.scope == "catalog" and kind in ("run-created", "run-stopped"):
            return self._child(msg, msg["uid"], kind == "run-stopped"), False
        if view.scope == "run" and kind == "stream-created":
            return self._child(msg, msg["name"]), False
        if view.table is not None and view.family == "container" and kind == "descriptor-added":
            return self._new_keys(msg), False
        if view.family == "array" and kind == "rows-appended":
            return [self._rows(msg)], False
        return [], False

    def _child(self, msg: dict, key: str, updated: bool = False) -> list[bytes]:
        try:
            node = self.catalog.node((*self.view.path, key))
        except NotFound:  # gone since (or never readable): nothing to tell
            return []
        fields = ("structure_family", "specs", "metadata")
        attrs = resource(node, self.api, fields, inline=False, tiled=True)["attributes"]
        out = {**_head(msg), "key": key, "specs": attrs["specs"], "metadata": attrs["metadata"]}
        if updated:
            out["type"] = "container-child-metadata-updated"
        else:
            out.update(
                type="container-child-created",
                structure_family=attrs["structure_family"],
                data_sources=[],
                access_tags=[],
            )
        return [_pack(out)]

    def _new_keys(self, msg: dict) -> list[bytes]:
        node = self.catalog.node(self.view.path)
        contents = resource(node, self.api, tiled=True)["attributes"]["structure"]["contents"]
        out = []
        for key, item in contents.items():
            if key in self.keys:
                continue
            self.keys.add(key)
            attrs = item["attributes"]
            out.append(
                _pack(
                    {
                        **_head(msg),
                        "type": "container-child-created",
                        "key": key,
                        "structure_family": attrs["structure_family"],
                        "specs": attrs["specs"],
                        "metadata": attrs["metadata"],
                        "data_sources": [self._source(node[key], attrs["structure"])],
                        "access_tags": [],
                    }
                )
            )
        return out

    def _frame(self, node: Any) -> None:
        """The column's structure as Tiled's client is shown it (tiled_frames.py): whether
        an area detector's rows get a frame axis is known once a row has data."""
        shown = as_tiled_writes(node)
        self.array = ArrayStructure.from_array_info(*shown.info()).to_json()
        self.framed = shown is not node or node.shape[0] > 0 or not isinstance(node, ExternalArray)

    def _rows(self, msg: dict) -> bytes:
        start, stop = int(msg["start_row"]), int(msg["stop_row"])
        if not self.framed:
            self._frame(self.catalog.node(self.view.path))
        data = msg.get("data")
        if isinstance(data, list):
            data = np.asarray(data, dtype=msg.get("dtype"))
        dtype = _dtype(self.array["data_type"])
        inner = list(self.array["shape"][1:])
        if isinstance(data, np.ndarray) and data.size == (stop - start) * math.prod(inner):
            data = data.reshape((stop - start, *inner))  # with the frame axis, if any
        if isinstance(data, np.ndarray) and len(data) == stop - start:
            plain = dtype.kind in PLAIN_KINDS and data.dtype.kind in PLAIN_KINDS
            if plain and data.nbytes <= INLINE_PAYLOAD:
                arr = np.ascontiguousarray(data, dtype=dtype)
                out = {
                    **_head(msg),
                    "type": "array-data",
                    "mimetype": "application/octet-stream",
                    "shape": list(arr.shape),
                    "offset": [start] + [0] * (arr.ndim - 1),
                    "block": None,
                }
                return _pack(out, arr.tobytes())
        node = self.catalog.node(self.view.path)
        out = {
            **_head(msg),
            "type": "array-ref",
            "data_source": self._source(node, self.array),
            "patch": {"offset": [start] + [0] * len(inner), "shape": [stop - start, *inner]},
            "uri": f"{self.api}/array/full/{self.here}?slice={start}:{stop}",
            "shape": [max(stop, self.array["shape"][0]), *inner],
        }
        return _pack(out)

    @staticmethod
    def _source(node: Any, structure: dict) -> dict:
        """One data source in Tiled's shape (its client wants exactly one per array): the
        detector's files for a file-backed column, none for a column stored here."""
        assets: list[dict] = []
        mimetype, parameters, management = "application/octet-stream", {}, "writable"
        if isinstance(node, ExternalArray):
            found = data_sources(node)
            if found:
                mimetype, parameters = found[0]["mimetype"], found[0]["parameters"]
                management = "external"
                assets = [{**s["assets"][0], "num": i} for i, s in enumerate(found) if s["assets"]]
        return {
            "id": None,
            "structure_family": "array",
            "structure": structure,
            "mimetype": mimetype,
            "parameters": parameters,
            "properties": {},
            "assets": assets,
            "management": management,
        }


def _head(msg: dict) -> dict:
    stamp = datetime.fromtimestamp(float(msg.get("timestamp") or 0), UTC)
    return {"sequence": int(msg["sequence"]), "timestamp": stamp.isoformat()}


def _dtype(data_type: dict) -> np.dtype:
    order = {"little": "<", "big": ">", "not_applicable": "|"}[data_type["endianness"]]
    return np.dtype(f"{order}{data_type['kind']}{data_type['itemsize']}")


def _pack(msg: dict, payload: bytes | None = None) -> bytes:
    """Plain msgpack, as Tiled's client decodes it (no msgpack-numpy); metadata through
    JSON first, so NaN is nil and numpy values are numbers, as in our metadata routes."""
    out = orjson.loads(dumps(msg))
    if payload is not None:
        out["payload"] = payload
    return msgpack.packb(out)


def _node(catalog: Catalog, path: str) -> Any:
    if any(ord(c) < 32 or c == "\x7f" for c in path):  # as limits.py does for HTTP paths
        raise ApiError(404, "the path holds a control character; no node's path holds one")
    parts = tuple(p for p in path.split("/") if p)
    try:
        return catalog.node(parts)
    except NotFound as err:
        raise ApiError(404, str(err)) from None
    except (CatalogError, ValueError) as err:
        raise ApiError(400, f"/{path[:100]} is not a path of this server: {err}") from None


def _start(start: str | None) -> int | None:
    if start is None:
        return None
    if not start.isascii() or not start.isdigit() or len(start) > 18:
        raise ApiError(400, f"start must be a whole number from 0 (got {start[:30]!r})")
    return int(start)


def _api(websocket: WebSocket) -> str:
    """This server's API address as Tiled's client fetches from it (http, not ws)."""
    base = str(websocket.base_url).rstrip("/")
    return base.replace("ws://", "http://", 1).replace("wss://", "https://", 1) + "/api/v1"


async def _pump(websocket: WebSocket, sub: Subscriber, tr: Translator) -> bool:
    """Send the subscriber's messages, translated, until it ends (True: the run stopped) or
    the connection or the hub ends it (False)."""
    while True:
        item = await sub.get()
        if item is None:
            return False
        seq, _kind, raw = item
        try:
            out, ended = await asyncio.to_thread(tr.translate, raw)
        except Exception as err:  # a node gone meanwhile: the change goes untold
            log.warning("Tiled live message for /%s failed: %s", tr.here, err)
            out, ended = [], False
        try:
            for message in out:
                await websocket.send_bytes(message)
        except Exception:  # the client is gone
            sub.end()
            return False
        sub.sent(seq)
        if ended:
            return True


async def _until_closed(websocket: WebSocket, sub: Subscriber) -> None:
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except Exception:  # a broken connection is a closed one
        pass
    finally:
        sub.end()


async def _deny(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse at the handshake with an HTTP status and a JSON reason, as Tiled's server does
    (its client then raises; a close after accepting would make it reconnect forever)."""
    body = dumps({"detail": detail})
    with contextlib.suppress(Exception):
        await websocket.send_denial_response(
            Response(body, status_code=status, media_type="application/json")
        )
        return
    await websocket.close(code=1008)  # a server without denial responses: HTTP 403


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    reason = reason.encode()[:123].decode(errors="ignore")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), DROP_GRACE)
