"""Notices a partition that has messages waiting but brings none in.

A consumer can be assigned a partition, not paused, not waiting for the catalog, and still
receive nothing while the partition's end moves on: a broker that answers fetches with no
records (Tansu does so whenever reading takes longer than the request's ``fetch_max_wait_ms``,
where Apache Kafka returns what it has), or a fetch state gone wrong in the client. Nothing is
lost (the messages stay on the topic, uncommitted), but ingest has stopped, and nobody would
know until a scientist asks where the run went. This watch makes that visible: the worker logs
a warning, restarts the partition's fetch, and ``/healthz`` shows the partition as stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class PartitionLag:
    """One partition's lag and how long its position has not moved while it lagged."""

    topic: str
    partition: int
    position: int
    end: int
    since: float  # when the position was last seen to move (or the lag to reach zero)
    acted: float | None = None  # when the worker last reported the stall and restarted the fetch

    @property
    def lag(self) -> int:
        return max(0, self.end - self.position)


class LagWatch:
    """Per-partition lag, updated from positions and end offsets; says which are stalled."""

    def __init__(self, stall_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after = stall_after
        self.clock = clock
        self.partitions: dict[Any, PartitionLag] = {}

    def update(self, positions: dict[Any, int], ends: dict[Any, int]) -> list[PartitionLag]:
        """Record what the consumer holds now; returns the stalled partitions due for action:
        those just found stalled, and those still stalled ``stall_after`` after the last."""
        now = self.clock()
        seen: dict[Any, PartitionLag] = {}
        for tp, position in positions.items():
            end = ends.get(tp, position)
            old = self.partitions.get(tp)
            if old is None or old.position != position or old.lag == 0 or end <= position:
                seen[tp] = PartitionLag(tp.topic, tp.partition, position, end, now)
            else:
                old.end = end
                seen[tp] = old
        self.partitions = seen  # partitions no longer assigned are forgotten
        due = [p for p in self.stalled() if p.acted is None or now - p.acted >= self.stall_after]
        for p in due:
            p.acted = now
        return due

    def stalled(self) -> list[PartitionLag]:
        now = self.clock()
        return [p for p in self.partitions.values() if self._stalled(p, now)]

    def total(self) -> int:
        return sum(p.lag for p in self.partitions.values())

    def _stalled(self, p: PartitionLag, now: float) -> bool:
        return p.lag > 0 and now - p.since >= self.stall_after
