"""One live connection's side of the hub: its place in a topic, its bounded queue, and the
rules for dropping it. Apart from the hub (``live.py``) so that the back-pressure rules a
slow client meets can be read on their own."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bluebroker.catalog import access
from bluebroker.catalog.access import Access

from .live_messages import View

if TYPE_CHECKING:
    from .live import Topic

QUEUE_BYTES = 64 * 1024 * 1024  # default bytes a subscriber may have waiting to be sent
DROP_GRACE = 5.0  # seconds a dropped subscriber's connection has to take its last message


class Subscriber:
    """One connection's place in a topic: the next sequence it needs and its queue.

    The connection takes messages with :meth:`get` and says what it finished sending with
    :meth:`sent`; ``sender`` is its sending task, cancelled when a dropped subscriber's
    connection cannot even take its last message (a client that never reads).
    """

    def __init__(
        self, view: View, envelope: str, next_seq: int, limit: int, limit_bytes: int = QUEUE_BYTES
    ) -> None:
        self.view = view
        self.envelope = envelope
        self.next_seq = next_seq
        self.limit = limit
        self.limit_bytes = limit_bytes
        # (sequence, type, encoded message); None after the hub dropped the subscriber
        self.queue: asyncio.Queue[tuple[int, str, bytes] | None] = asyncio.Queue()
        self.queued_bytes = 0
        self._room = asyncio.Event()  # set while catching up may queue more (see room())
        self._room.set()
        self.last_sent = next_seq - 1  # the last sequence the connection sent whole
        self.catching_up = True
        self.task: asyncio.Task | None = None  # catching up from the table
        self.sender: asyncio.Task | None = None
        self.topic: Topic | None = None  # while subscribed
        self.why: str | None = None  # why the hub dropped it
        # what the subscriber may read (catalog/access.py): changes of other runs are skipped
        self.access: Access | None = access.current()
        self.readable: dict[str, bool] = {}  # run uid -> may it be told of (start is fixed)

    @property
    def reason(self) -> str | None:
        """Why the hub dropped the subscriber and where to resume: the first sequence the
        connection did not finish sending (read once the sending has ended, it never skips
        one; a send cut off midway may repeat one the client got)."""
        if self.why is None:
            return None
        return f"{self.why}; reconnect with start={self.last_sent + 1}"

    def offer(self, message: bytes, seq: int, kind: str) -> None:
        if self.why is not None:
            return
        waiting = self.queue.qsize()
        over_bytes = waiting and self.queued_bytes + len(message) > self.limit_bytes
        if waiting >= self.limit or over_bytes:
            size = f"{self.queued_bytes / 1e6:.1f} MB"
            self.drop(f"subscriber fell {waiting} messages ({size}) behind")
            return
        self.queue.put_nowait((seq, kind, message))
        self.queued_bytes += len(message)
        self.next_seq = seq + 1

    async def get(self) -> tuple[int, str, bytes] | None:
        """The next message to send, or None when the subscription has ended."""
        item = await self.queue.get()
        if item is not None:
            self.queued_bytes -= len(item[2])
            if self._has_room():
                self._room.set()
        return item

    def _has_room(self) -> bool:
        return self.queue.qsize() < max(self.limit // 2, 1) and (
            self.queued_bytes < self.limit_bytes // 2 or self.queue.empty()
        )

    async def room(self) -> None:
        """Wait until the queue is half empty. Catching up from the table goes at the
        connection's pace (it never drops a subscriber); only live changes, which cannot
        wait, are dropped on a full queue."""
        while not self._has_room() and self.why is None:
            self._room.clear()
            await self._room.wait()

    def sent(self, seq: int) -> None:
        self.last_sent = seq

    def drop(self, why: str) -> None:
        """End the subscription with a reason that says where to resume; what is queued is
        let go, and a connection stuck sending is cut off after ``DROP_GRACE``."""
        if self.why is not None:
            return
        self.why = why
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queued_bytes = 0
        self.queue.put_nowait(None)
        self._room.set()
        if self.sender is not None and not self.sender.done():
            asyncio.get_running_loop().call_later(DROP_GRACE, self.sender.cancel)

    def end(self) -> None:
        """The connection went away: stop its sending loop."""
        self.queue.put_nowait(None)
