"""The ingest worker's offsets: committed only after handled messages, partition by partition,
and its partitions across rebalances.

What counts is what the worker has handled, not where the consumer stands: a position moves
past records as soon as a poll returns them, whether or not they were ever written.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


class Offsets:
    """The offset after the last handled message of each partition the worker owns."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.done: dict[Any, OffsetAndMetadata] = {}
        self.failed = False  # a commit failed and no batch has been committed since

    def handled(self, records: dict) -> None:
        """Commit, without waiting for the broker's answer, the offsets after a handled batch
        for the partitions the worker still owns.

        A synchronous commit is a round trip after every batch, and at live rates (one event
        per batch) the next event waited behind it. Losing an async commit (a crash) only
        means those messages are read again; a failed one is committed again (see
        :meth:`retry`), as a rebalance that keeps a partition keeps its position too.
        """
        assigned = self.consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(msgs[-1].offset + 1, "", _epoch(msgs[-1]))
            for tp, msgs in records.items()
            if tp in assigned
        }
        if offsets:
            self.done.update(offsets)
            self.consumer.commit_async(offsets, callback=self._answered)

    def retry(self) -> None:
        """After a failed commit and no batch since: commit what is done once more."""
        self.failed = False
        done = self._owned()
        if done:
            self.consumer.commit_async(done, callback=self._answered)

    def last(self) -> None:
        """Commit what is done and wait for the answer (async commits may be in flight)."""
        try:
            done = self._owned()
            if done:
                self.consumer.commit(done, timeout_ms=10_000)
        except Exception as err:  # the broker gone, the group moved on: replays are harmless
            log.warning("last offset commit failed (%s)", err)

    def keep_only(self, assigned: frozenset) -> None:
        for tp in set(self.done) - assigned:  # another owner's now: not ours to undo
            del self.done[tp]

    def _owned(self) -> dict:
        assigned = self.consumer.assignment()
        return {tp: offset for tp, offset in self.done.items() if tp in assigned}

    def _answered(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            self.failed = True
            log.warning("offsets not committed (%s); committing them again", response)


class Rebalance(ConsumerRebalanceListener):
    """Keeps partitions handed over while the worker waits (for the catalog, for the
    dead-letter topic) paused, as kafka-python starts them unpaused; forgets offsets of
    partitions taken away; and says when the worker has partitions (its readiness).

    Called on kafka-python's IO thread while the worker's thread waits inside ``poll``.
    """

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.worker.assigned = self.worker.assigned - set(revoked)

    def on_partitions_lost(self, lost: Any) -> None:
        """Evicted: positions restart from the committed offsets, and what was done after
        them is read, written (as no change) and committed again."""
        self.worker.offsets.done.clear()
        self.on_partitions_revoked(lost)

    def on_partitions_assigned(self, assigned: Any) -> None:
        worker = self.worker
        if worker.waiting is not None and assigned:
            worker.consumer.pause(*assigned)
        worker.assigned = frozenset(worker.consumer.assignment())
        worker.offsets.keep_only(worker.assigned)
        names = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in worker.assigned))
        log.info("kafka ingest: partitions assigned: %s", names or "none")
        worker.ready.set()


def _epoch(message: Any) -> int:
    epoch = getattr(message, "leader_epoch", None)
    return -1 if epoch is None else epoch
