"""Live updates: one hub per server process turns committed catalog changes into messages.

The catalog's change log is the truth (see ``bluebroker.catalog.changes``): every message is a
change of one node with that node's sequence number. The hub keeps one *topic* per watched
node with the last sequence number it has handed out; notices (in-process, ``NOTIFY``, the
SQLite tail) only wake a topic up, which then takes the next changes in order, from the notice
when it is the very next one, else from the table. A subscriber starting at ``start=N`` (or
reconnecting) is first served from the table, then joins the topic: no gap, no duplicate.

Messages are built once per change and per kind of view (a stream, its data table, one
column; JSON or msgpack) however many subscribers share them, and handed to each
subscriber's bounded queue. A subscriber more than ``queue_limit`` messages or
``queue_bytes`` bytes behind is disconnected with a reason saying where to resume (the first
sequence it was not sent); it never slows ingest or the others. One that does not even read
what is being sent to it is cut off ``DROP_GRACE`` seconds later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from bluebroker.catalog import Catalog, CatalogError, Node
from bluebroker.catalog.access import reading_as
from bluebroker.catalog.changes import Change, last_seq, since

from .errors import ApiError
from .live_messages import (
    ENVELOPES,
    View,
    build_message,
    encode,
    schema_message,
    unreadable_message,
    view_of,
)
from .live_subscriber import DROP_GRACE, QUEUE_BYTES, Subscriber

__all__ = [
    "DROP_GRACE",
    "ENVELOPES",
    "QUEUE_BYTES",
    "Hub",
    "Subscriber",
    "View",
    "encode",
    "schema_message",
    "view_of",
]

log = logging.getLogger(__name__)

@dataclass
class Topic:
    """One watched node: its subscribers and the last change handed out."""

    key: tuple[str, int]
    last: int = -1  # -1 until read: notices that come meanwhile wait in ``pending``
    subscribers: set[Subscriber] = field(default_factory=set)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[int, Change] = field(default_factory=dict)
    check_table: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class Hub:
    """Fan-out of one catalog's committed changes to this process's subscribers."""

    def __init__(
        self,
        catalog: Catalog,
        api: str = "/api/v1",
        queue_limit: int = 1000,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        self.catalog = catalog
        self.api = api
        self.queue_limit = queue_limit
        self.queue_bytes = queue_bytes
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
        """Join the view's topic; returns the subscriber and the node's sequence right now.

        A ``start`` beyond the node's next sequence is refused (400): nothing would ever
        fill the gap up to it."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self.catalog.changes.add_listener(self._from_thread)
            # Read where a node stands only once notices flow, so none falls in between.
            await asyncio.to_thread(self.catalog.changes.ready.wait, 10)
        while True:
            topic = await self._topic(view)
            if start is not None and start > topic.last + 1:
                latest = await asyncio.to_thread(self._last_seq, view)  # notices may lag
                if start > latest + 1:
                    self._forget_if_idle(topic)
                    raise ApiError(
                        400,
                        f"start={start} is past the latest change (sequence {latest}); use "
                        f"start=1 to {latest + 1}, or no start to follow from now on",
                    )
            if self.topics.get(view.key) is topic:
                break  # still open (its last subscriber may have left meanwhile): join it
        now = topic.last
        sub = Subscriber(
            view,
            envelope,
            now + 1 if start is None else max(start, 1),
            self.queue_limit,
            self.queue_bytes,
        )
        sub.topic = topic
        topic.subscribers.add(sub)
        sub.task = asyncio.create_task(self._catch_up(topic, sub))
        return sub, now

    async def _topic(self, view: View) -> Topic:
        """The view's topic, registered *before* reading where the node stands: a change
        committed meanwhile waits in ``pending`` instead of being missed (which left a
        subscriber of a quiet node waiting forever)."""
        topic = self.topics.get(view.key)
        if topic is not None:
            await topic.loaded.wait()
            if topic.last < 0:
                raise ApiError(503, "the catalog did not answer; connect again in a moment")
            return topic
        topic = self.topics[view.key] = Topic(view.key)
        try:
            last = await asyncio.to_thread(self._last_seq, view)
        except BaseException as err:  # cancelled too: others must not wait on this topic
            self._forget_if_idle(topic)
            topic.loaded.set()
            if not isinstance(err, Exception):
                raise
            log.exception("reading where /%s stands failed", "/".join(view.path))
            raise ApiError(503, "the catalog did not answer; connect again in a moment") from None
        topic.last = last
        for seq in [s for s in topic.pending if s <= last]:
            del topic.pending[seq]
        topic.loaded.set()
        topic.task = asyncio.create_task(self._pump(topic))
        return topic

    def unsubscribe(self, sub: Subscriber) -> None:
        """Leave the topic (again is harmless); the last one out closes it."""
        topic, sub.topic = sub.topic, None
        if sub.task is not None:
            sub.task.cancel()
        if topic is None:
            return
        topic.subscribers.discard(sub)
        self._forget_if_idle(topic)

    def _forget_if_idle(self, topic: Topic) -> None:
        if topic.subscribers or self.topics.get(topic.key) is not topic:
            return
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
            if sub.catching_up or sub.why is not None:
                continue
            if sub.next_seq == change.seq and not await self._may_hear(sub, change):
                sub.next_seq = change.seq + 1  # another's run: skipped, never told
                continue
            if sub.next_seq == change.seq:
                groups[(sub.view, sub.envelope)].append(sub)
            elif sub.next_seq < change.seq:  # never expected; the table fills the gap
                sub.catching_up = True
                sub.task = asyncio.create_task(self._catch_up(topic, sub))
        for (view, envelope), subs in groups.items():
            message = await self._encoded(view, change, envelope)
            for sub in subs:
                sub.offer(message, change.seq, change.kind)

    async def _may_hear(self, sub: Subscriber, change: Change) -> bool:
        """May ``sub`` be told of ``change``? Only a catalog's changes concern several runs:
        a subscriber to a run or below could subscribe only because it may read that run."""
        if sub.access is None or sub.view.scope != "catalog":
            return True
        uid = (change.body or {}).get("uid")
        if not isinstance(uid, str):
            return True
        if uid not in sub.readable:
            sub.readable[uid] = await asyncio.to_thread(self._readable, sub, uid)
        return sub.readable[uid]

    def _readable(self, sub: Subscriber, uid: str) -> bool:
        with reading_as(sub.access):
            runs = self.catalog.node(sub.view.path)
            return uid in runs

    async def _encoded(self, view: View, change: Change, envelope: str) -> bytes:
        """The change's message for the view; without its rows when they could not be read
        (live and catching up alike: a subscriber is never dropped for it, and never left
        without the sequence)."""
        try:
            return await asyncio.to_thread(self._build, view, change, envelope)
        except Exception as err:
            # the catalog's own errors (a detector file gone) are expected; others get a trace
            unexpected = not isinstance(err, CatalogError)
            log.warning(
                "live message for /%s failed: %s", "/".join(view.path), err, exc_info=unexpected
            )
            return encode(unreadable_message(self.api, view, change, err), envelope)

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
            while sub.why is None:
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
                    await sub.room()
                    if not await self._may_hear(sub, change):
                        sub.next_seq = change.seq + 1
                        continue
                    message = await self._encoded(sub.view, change, sub.envelope)
                    sub.offer(message, change.seq, change.kind)
        except Exception:
            log.exception("catching up /%s failed", "/".join(sub.view.path))
            sub.drop("the change log could not be read")
