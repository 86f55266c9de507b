"""Live updates in the client: callbacks, an iterator, and a table that grows.

``node.subscribe(callback)`` runs a websocket in a background thread and calls ``callback``
with each :class:`Update`. When the connection drops (a server restart, a proxy timeout, a
laptop that slept) it reconnects by itself and asks for the next sequence number it has not
seen, so callbacks see every change once and in order. ``node.updates()`` is the same as an
iterator, and ``stream.live()`` / ``table.live()`` keep a pandas/xarray
view current (``live_table.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np

from bluebroker import packing

from .transport import AuthenticationError, BadRequestError, ClientError, NotFoundError, quote_path

if TYPE_CHECKING:

    from .transport import Transport

log = logging.getLogger(__name__)

# The server's close codes (server/routes/stream.py) that retrying cannot mend.
FINAL_CLOSES = {1008: AuthenticationError, 4400: BadRequestError, 4404: NotFoundError}


@dataclass
class Update:
    """One change of the watched node.

    ``type`` is ``run-created``, ``run-stopped``, ``stream-created``, ``descriptor-added`` or
    ``rows-appended`` (once per row range, whatever wrote the rows: events or a detector's
    stream_datum); ``sequence`` counts the node's changes from 1; ``message`` is all the
    server said (``uid``, ``seq_nums``, ``start_row``/``stop_row``, ``links``...): the keys
    depend on the type, so ``update.get(key)`` for one that a type may lack.
    """

    type: str
    sequence: int
    message: dict[str, Any] = field(repr=False)

    @property
    def data(self) -> Any:
        """Appended rows: a dict of column arrays for a table, an array for an array node
        (None when the append was too large to send inline, or could not be read, with
        ``update.get("error")`` saying why: read it from ``links``).
        Numbers sent as lists get back the dtype the server named (``dtypes``/``dtype``)."""
        data = self.message.get("data")
        if isinstance(data, dict):
            dtypes = self.message.get("dtypes") or {}
            return {k: np.asarray(v, dtype=dtypes.get(k)) for k, v in data.items()}
        return None if data is None else np.asarray(data, dtype=self.message.get("dtype"))

    def __getitem__(self, key: str) -> Any:
        return self.message[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.message.get(key, default)


Callback = Callable[[Update], None]


class _Loop:
    """One event loop thread shared by every subscription of the process: a hundred
    subscriptions cost one thread, not two hundred. uvloop runs it when installed (the
    server's extra brings it): receiving is most of a subscription's cost, and uvloop's
    socket reads cost a fraction of asyncio's."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                try:
                    import uvloop

                    loop = uvloop.new_event_loop()
                except ImportError:
                    loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="bluebroker-live", daemon=True
                ).start()
                cls._loop = loop
            return cls._loop


class Subscription:
    """Live updates of one node, delivered to callbacks from a background thread.

    ``start=None`` gives what happens from now on; ``start=1`` replays every change first.
    Use it as a context manager, or call :meth:`start` and :meth:`close`. Callbacks run on
    the one thread that serves every subscription of the process: keep them quick (append
    to a list, put on a queue) and do heavy work elsewhere.
    """

    def __init__(
        self,
        transport: Transport,
        path: tuple[str, ...],
        start: int | None = None,
        *,
        reconnect: bool = True,
        max_wait: float = 5.0,
    ) -> None:
        self._transport = transport
        self.path = path
        self.reconnect = reconnect
        self.max_wait = max_wait
        self.sequence: int | None = None if start is None else max(start, 1) - 1
        self.schema: dict[str, Any] | None = None
        self.error: Exception | None = None  # why it stopped, when it could not go on
        self.reconnects = 0
        self._callbacks: list[Callback] = []
        self._connected = threading.Event()
        self._future: concurrent.futures.Future | None = None

    def add_callback(self, callback: Callback) -> Subscription:
        self._callbacks.append(callback)
        return self

    def start(self, timeout: float = 10.0) -> Subscription:
        """Connect; returns once the server has sent its first message (or raises why not)."""
        self._future = asyncio.run_coroutine_threadsafe(self._main(), _Loop.get())
        deadline = time.monotonic() + timeout
        while not self._connected.wait(0.02):
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f"no answer from {self._url()} within {timeout} s")
        return self

    def close(self) -> None:
        future = self._future
        if future is not None and not future.done():
            future.cancel()
            with contextlib.suppress(Exception):
                future.result(timeout=5)

    def __enter__(self) -> Subscription:
        return self.start() if self._future is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def _url(self) -> str:
        base = self._transport.api.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        params: dict[str, Any] = {"envelope_format": "msgpack"}
        if self.sequence is not None:
            params["start"] = self.sequence + 1
        return f"{base}/stream/single/{quote_path(self.path)}?{urlencode(params)}"

    async def _main(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        wait = 0.1
        headers = {
            k: v for k, v in self._transport.http.headers.items() if k.lower() == "authorization"
        }
        while True:
            try:
                # No permessage-deflate: numbers compress poorly, and the server would deflate
                # every message once per subscriber (it was a third of its CPU at 100
                # subscribers).
                async with connect(
                    self._url(),
                    additional_headers=headers,
                    max_size=None,
                    open_timeout=10,
                    compression=None,
                ) as ws:
                    async for raw in ws:
                        try:
                            message = packing.unpackb(raw)
                        except packing.PayloadRefused as err:  # never decoded unsafely
                            self.error = ClientError(0, f"unusable message from the server: {err}")
                            return
                        self._handle(message)
                        wait = 0.1
                    code, reason = ws.close_code, ws.close_reason
            except ConnectionClosed as err:
                code = err.rcvd.code if err.rcvd else None
                reason = err.rcvd.reason if err.rcvd else str(err)
            except (OSError, InvalidHandshake, TimeoutError) as err:
                code, reason = None, str(err)
            if code in FINAL_CLOSES:
                self.error = FINAL_CLOSES[code](404 if code == 4404 else 400, reason)
                log.error("live updates of /%s stopped: %s", "/".join(self.path), reason)
                return
            if not self.reconnect:
                self.error = ClientError(0, f"connection closed: {reason or code}")
                return
            log.info("live updates of /%s dropped (%s); reconnecting", "/".join(self.path), reason)
            self.reconnects += 1
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.max_wait)

    def _handle(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "schema":
            if self.sequence is None:  # from now on: resume after what the server had
                self.sequence = int(msg["sequence"])
            if self.schema is None:
                self.schema = msg
            self._connected.set()
            return
        seq = int(msg.get("sequence", 0))
        if self.sequence is not None and seq <= self.sequence:
            return  # seen before a reconnect
        self.sequence = seq
        update = Update(str(msg.get("type")), seq, msg)
        for callback in list(self._callbacks):
            try:
                callback(update)
            except Exception:  # one bad callback must not end the subscription
                log.exception("live update callback %r failed", callback)


def updates(
    transport: Transport,
    path: tuple[str, ...],
    start: int | None = None,
    timeout: float | None = None,
    until_stopped: bool = True,
) -> Iterator[Update]:
    """Iterate over updates as they come. Ends when the run stops (with ``until_stopped``, on
    runs, streams, tables and arrays; at once for a run that had stopped already, once what
    ``start`` asked for is replayed), after ``timeout`` seconds without one, or on break."""
    q: queue.Queue[Update] = queue.Queue()
    sub = Subscription(transport, path, start).add_callback(q.put)
    with sub:
        schema = sub.schema or {}
        if (
            until_stopped
            and schema.get("stopped")
            and (start is None or start > schema["sequence"])
        ):
            return  # nothing is left to replay, and nothing new will come
        while True:
            try:
                update = q.get(timeout=0.2 if timeout is None else min(timeout, 0.2))
            except queue.Empty:
                if sub.error is not None:
                    raise sub.error from None
                if timeout is not None:
                    timeout -= 0.2
                    if timeout <= 0:
                        return
                continue
            yield update
            scope = (sub.schema or {}).get("scope")
            if until_stopped and update.type == "run-stopped" and scope != "catalog":
                return
