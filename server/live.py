"""Live updates: one hub per server process turns committed catalog changes into messages.

The catalog's change log is the truth (see ``bluebroker.catalog.changes``): every message is a
change of one node with that node's sequence number. The hub keeps one *topic* per watched
node with the last sequence number it has handed out; notices (in-process, ``NOTIFY``, the
SQLite tail) only wake a topic up, which then takes the next changes in order, from the notice
when it is the very next one, else from the table. A subscriber starting at ``start=N`` (or
reconnecting) is first served from the table, then joins the topic: no gap, no duplicate.

Messages are built once per change and per kind of view (a stream, its data table, one
column; JSON or msgpack) however many subscribers share them, and handed to each
subscriber's bounded queue. A subscriber that falls ``queue_limit`` messages behind is
disconnected with a reason saying where to resume; it never slows ingest or the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bluebroker import packing
from bluebroker.catalog import ArrayNode, Catalog, Node, Run, RunCatalog, Stream
from bluebroker.catalog.changes import Change, last_seq, since
from bluebroker.catalog.tables import EventTable

from .encoders.jsonable import dumps
from .errors import ApiError

log = logging.getLogger(__name__)

ENVELOPES = ("json", "msgpack")
INLINE_ROWS = 10_000  # appended rows sent with their data; longer appends send a link
INLINE_BYTES = 8_000_000
SMALL_AS_LIST = 4096  # elements of a numeric column sent as a list in msgpack messages


@dataclass(frozen=True)
class View:
    """What a subscriber watches: a node, and which of its changes' data it wants."""

    scope: str  # "catalog", "run" or "stream": whose sequence numbers count
    node_id: int
    path: tuple[str, ...]
    family: str  # "container", "table" or "array"
    table: str | None = None  # "data" or "timestamps" for tables and their columns
    column: str | None = None  # the array's column

    @property
    def key(self) -> tuple[str, int]:
        return (self.scope, self.node_id)


def view_of(node: Node) -> View:
    """The view of a node that has live updates, or a 400 saying which nodes do."""
    path = node.path
    if isinstance(node, RunCatalog):
        if node.queries:
            raise ApiError(400, "subscribe to the whole catalog of runs, without a search")
        return View("catalog", node.catalog_id, path, "container")
    if isinstance(node, Run):
        return View("run", node.id, path, "container")
    if isinstance(node, Stream):
        return View("stream", node.id, path, "container")
    if isinstance(node, EventTable):
        return View("stream", node.stream.id, path, "table", node.kind)
    stream = getattr(node, "stream", None)
    if (
        isinstance(node, ArrayNode)
        and isinstance(stream, Stream)
        and path[-2] in ("data", "timestamps")
    ):
        return View("stream", stream.id, path, "array", path[-2], path[-1])
    raise ApiError(
        400,
        f"/{'/'.join(path)} has no live updates; subscribe to a catalog of runs, a run, a "
        "stream, its data or timestamps table, or one of their columns",
    )


def schema_message(
    catalog: Catalog, view: View, sequence: int, start: int | None, envelope: str
) -> dict:
    """The first message of every subscription: what is watched and where the sequence is."""
    msg: dict[str, Any] = {
        "type": "schema",
        "version": 1,
        "path": "/" + "/".join(view.path),
        "structure_family": view.family,
        "scope": view.scope,
        "sequence": sequence,
        "start": start,
        "envelope_format": envelope,
    }
    if view.family != "container":
        node = catalog.node(view.path)
        if isinstance(node, EventTable):
            msg["columns"] = ["seq_num", *node.internal_columns]
        elif isinstance(node, ArrayNode):
            shape, dtype, dims = node.info()
            msg.update(shape=list(shape), dtype=str(dtype), dims=list(dims))
    return msg


def build_message(
    catalog: Catalog, api: str, view: View, change: Change, node: Node | None = None
) -> dict:
    """The message for one change as this view shows it (runs in a worker thread); ``node``
    is the view's node when the caller has it already."""
    msg: dict[str, Any] = {
        "type": change.kind,
        "sequence": change.seq,
        "timestamp": change.time,
        **(change.body or {}),
    }
    here = "/".join(view.path)
    if view.scope == "catalog" and "uid" in msg:
        msg["links"] = {"self": f"{api}/metadata/{here}/{msg['uid']}"}
    elif view.scope == "run" and change.kind == "stream-created":
        msg["links"] = {"self": f"{api}/metadata/{here}/{msg['name']}"}
    if change.kind != "rows-appended" or view.family == "container":
        if change.kind == "rows-appended":
            msg["links"] = {"data": f"{api}/table/full/{here}/data"}
        return msg
    start, stop = int(msg["start_row"]), int(msg["stop_row"])
    route = "array/full" if view.family == "array" else "table/full"
    where = f"?slice={start}:{stop}" if view.family == "array" else ""
    msg["links"] = {"full": f"{api}/{route}/{here}{where}"}
    if stop - start > INLINE_ROWS:
        return msg
    node = node if node is not None else catalog.node(view.path)
    carried = change.rows()  # the rows as the writer's notice carried them, if it could
    if isinstance(node, EventTable):
        data = node.read_arrays(None, start=start, stop=stop, preread=carried)
    elif carried is not None and getattr(node, "stored", None) in carried:
        data = carried[node.stored]
    else:
        data = node.read_rows(start, stop)
    if _nbytes(data) <= INLINE_BYTES:
        msg["data"] = data
        if isinstance(data, dict):
            msg["dtypes"] = {k: v.dtype.str for k, v in data.items() if _listable(v)}
        elif _listable(data):
            msg["dtype"] = data.dtype.str
    return msg


def _listable(arr: Any) -> bool:
    """Numbers and booleans a message may carry as plain lists, with their dtype beside."""
    return isinstance(arr, np.ndarray) and arr.dtype.kind in "biuf"


def _nbytes(data: Any) -> int:
    if isinstance(data, dict):
        return sum(_nbytes(v) for v in data.values())
    return int(data.nbytes) if isinstance(data, np.ndarray) else 0


def encode(msg: dict, envelope: str) -> bytes:
    """JSON text (arrays as lists, NaN as null) or msgpack.

    In msgpack, small numeric columns go as plain lists (their dtypes are in the message):
    a subscriber decodes those in C, where a msgpack-numpy array costs a Python call per
    array, which at a hundred subscribers was most of a client's time. Larger arrays stay
    msgpack-numpy (raw bytes).
    """
    if envelope == "msgpack":
        data = msg.get("data")
        if isinstance(data, dict):
            msg = {**msg, "data": {k: _small_as_list(v) for k, v in data.items()}}
        elif data is not None:
            msg = {**msg, "data": _small_as_list(data)}
        return packing.packb(msg)
    return dumps(msg)


def _small_as_list(arr: Any) -> Any:
    return arr.tolist() if _listable(arr) and arr.size <= SMALL_AS_LIST else arr


class Subscriber:
    """One connection's place in a topic: the next sequence it needs and its queue."""

    def __init__(self, view: View, envelope: str, next_seq: int, limit: int) -> None:
        self.view = view
        self.envelope = envelope
        self.next_seq = next_seq
        self.limit = limit
        # (sequence, type, encoded message); None after the hub dropped the subscriber
        self.queue: asyncio.Queue[tuple[int, str, bytes] | None] = asyncio.Queue()
        self.catching_up = True
        self.task: asyncio.Task | None = None  # catching up from the table
        self.reason: str | None = None  # why the hub dropped it

    def offer(self, message: bytes, seq: int, kind: str) -> None:
        if self.reason is not None:
            return
        if self.queue.qsize() >= self.limit:
            self.reason = (
                f"subscriber fell {self.limit} messages behind; reconnect with start={seq}"
            )
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((seq, kind, message))
        self.next_seq = seq + 1


@dataclass
class Topic:
    """One watched node: its subscribers and the last change handed out."""

    key: tuple[str, int]
    last: int
    subscribers: set[Subscriber] = field(default_factory=set)
    pending: dict[int, Change] = field(default_factory=dict)
    check_table: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class Hub:
    """Fan-out of one catalog's committed changes to this process's subscribers."""

    def __init__(self, catalog: Catalog, api: str = "/api/v1", queue_limit: int = 1000) -> None:
        self.catalog = catalog
        self.api = api
        self.queue_limit = queue_limit
        self.topics: dict[tuple[str, int], Topic] = {}
        self._nodes: dict[View, Node] = {}  # watched tables and arrays, for reading rows
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- from the catalog's feed (a background thread) -----------------------------------

    def _from_thread(self, changes: list[Change] | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._notice, changes)

    def _notice(self, changes: list[Change] | None) -> None:
        if changes is None:  # notices may have been lost: every topic looks at the table
            for topic in self.topics.values():
                topic.check_table = True
                topic.wake.set()
            return
        for change in changes:
            topic = self.topics.get(change.key)
            if topic is not None and change.seq > topic.last:
                topic.pending[change.seq] = change
                topic.wake.set()

    # -- subscribing -----------------------------------------------------------------------

    async def subscribe(
        self, view: View, envelope: str, start: int | None
    ) -> tuple[Subscriber, int]:
        """Join the view's topic; returns the subscriber and the node's sequence right now."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self.catalog.changes.add_listener(self._from_thread)
            # Read where a node stands only once notices flow, so none falls in between.
            await asyncio.to_thread(self.catalog.changes.ready.wait, 10)
        topic = self.topics.get(view.key)
        if topic is None:
            last = await asyncio.to_thread(self._last_seq, view)
            topic = self.topics.get(view.key)  # another subscriber may have made it meanwhile
            if topic is None:
                topic = self.topics[view.key] = Topic(view.key, last)
                topic.task = asyncio.create_task(self._pump(topic))
        now = topic.last
        sub = Subscriber(
            view, envelope, now + 1 if start is None else max(start, 1), self.queue_limit
        )
        topic.subscribers.add(sub)
        sub.task = asyncio.create_task(self._catch_up(topic, sub))
        return sub, now

    def unsubscribe(self, sub: Subscriber) -> None:
        topic = self.topics.get(sub.view.key)
        if topic is None:
            return
        topic.subscribers.discard(sub)
        if sub.task is not None:
            sub.task.cancel()
        if not topic.subscribers:
            del self.topics[topic.key]
            for view in [v for v in self._nodes if v.key == topic.key]:
                self._nodes.pop(view, None)
            if topic.task is not None:
                topic.task.cancel()

    def _last_seq(self, view: View) -> int:
        with self.catalog.connect() as conn:
            return last_seq(conn, view.scope, view.node_id)

    def _since(self, key: tuple[str, int], after: int, limit: int = 500) -> list[Change]:
        with self.catalog.connect() as conn:
            return since(conn, key[0], key[1], after, limit)

    # -- delivering --------------------------------------------------------------------------

    async def _pump(self, topic: Topic) -> None:
        """Hand out the topic's changes in sequence order as notices arrive. A failure (the
        database away for a moment) is logged and retried from the table; it never ends the
        topic."""
        while True:
            await topic.wake.wait()
            topic.wake.clear()
            try:
                while True:
                    nxt = topic.pending.pop(topic.last + 1, None)
                    if nxt is not None and nxt.body is not None:
                        batch = [nxt]
                    elif nxt is not None or topic.check_table or topic.pending:
                        topic.check_table = False
                        batch = await asyncio.to_thread(self._since, topic.key, topic.last)
                        if not batch:
                            break
                    else:
                        break
                    for change in batch:
                        if change.seq <= topic.last:
                            continue
                        topic.last = change.seq  # first: a catching-up subscriber reads this
                        await self._deliver(topic, change)
                    for seq in [s for s in topic.pending if s <= topic.last]:
                        del topic.pending[seq]
            except Exception as err:
                log.warning("live updates of %s: %s; retrying", topic.key, err)
                await asyncio.sleep(0.5)
                topic.check_table = True
                topic.wake.set()

    async def _deliver(self, topic: Topic, change: Change) -> None:
        groups: dict[tuple, list[Subscriber]] = defaultdict(list)
        for sub in list(topic.subscribers):
            if sub.catching_up or sub.reason is not None:
                continue
            if sub.next_seq == change.seq:
                groups[(sub.view, sub.envelope)].append(sub)
            elif sub.next_seq < change.seq:  # never expected; the table fills the gap
                sub.catching_up = True
                sub.task = asyncio.create_task(self._catch_up(topic, sub))
        for (view, envelope), subs in groups.items():
            try:
                message = await self._encoded(view, change, envelope)
            except Exception as err:  # the data could not be read: say so, keep going
                log.warning("live message for /%s failed: %s", "/".join(view.path), err)
                message = encode(
                    {"type": "error", "sequence": change.seq, "detail": str(err)}, envelope
                )
            for sub in subs:
                sub.offer(message, change.seq, change.kind)

    async def _encoded(self, view: View, change: Change, envelope: str) -> bytes:
        return await asyncio.to_thread(self._build, view, change, envelope)

    def _build(self, view: View, change: Change, envelope: str) -> bytes:
        node = None
        if view.family != "container" and change.kind == "rows-appended":
            # Nodes are kept while watched (a stream's descriptors are cached on it), so a
            # message costs only the read of its rows; a new descriptor refreshes them.
            node = self._nodes.get(view)
            if node is None:
                node = self._nodes[view] = self.catalog.node(view.path)
        elif change.kind == "descriptor-added":
            for other in [v for v in self._nodes if v.key == view.key]:
                self._nodes.pop(other, None)
        return encode(build_message(self.catalog, self.api, view, change, node), envelope)

    async def _catch_up(self, topic: Topic, sub: Subscriber) -> None:
        """Serve a subscriber from the table until it reaches the topic, then go live."""
        try:
            while sub.reason is None:
                if sub.next_seq > topic.last:
                    sub.catching_up = False  # no await between the check and this
                    return
                found = await asyncio.to_thread(self._since, topic.key, sub.next_seq - 1)
                if not found:
                    sub.catching_up = False
                    return
                for change in found:
                    if change.seq > topic.last:
                        break
                    message = await self._encoded(sub.view, change, sub.envelope)
                    sub.offer(message, change.seq, change.kind)
        except Exception as err:
            log.exception("catching up /%s failed", "/".join(sub.view.path))
            sub.reason = f"catching up failed: {err}"
            sub.queue.put_nowait(None)
