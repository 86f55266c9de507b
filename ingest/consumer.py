"""The ingest worker: Kafka messages in, catalog entries out, with exactly-once effect.

Offsets are committed only after the catalog transaction holding the documents has
committed. A crash between the two replays those messages, and the writer's idempotence
turns the replay into no change. Messages that cannot be decoded or are refused by the writer
go to the dead-letter topic with the reason in their headers, and the worker goes on. When
the catalog database is away the worker pauses its partitions and retries the same batch.
"""

from __future__ import annotations

import gc
import logging
import re
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bluebroker.catalog import Catalog

from .wire import WireError, catalog_path, decode, document_bytes
from .writer import CatalogWriter

log = logging.getLogger(__name__)
DATABASE_AWAY = (sa.exc.OperationalError, sa.exc.InterfaceError)


@dataclass
class Counters:
    """What the worker has done, logged every ``report_every`` seconds."""

    consumed: int = 0
    written: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    lag: int | None = None

    def line(self) -> str:
        lag = "?" if self.lag is None else self.lag
        return (
            f"consumed {self.consumed} written {self.written} duplicates "
            f"{self.duplicates} dead-lettered {self.dead_lettered} lag {lag}"
        )


class KafkaIngestWorker:
    """Consume document topics into ``catalog`` (one writer per catalog path)."""

    def __init__(
        self,
        catalog: Catalog,
        bootstrap_servers: str | list[str],
        topic: str,
        *,
        group_id: str = "bluebroker-ingest",
        catalog_path_template: str = "{beamline}/raw",
        dead_letter_topic: str = "bluebroker.dead-letters",
        batch_size: int = 2000,
        report_every: float = 10.0,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        self.catalog = catalog
        self.template = catalog_path_template
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.report_every = report_every
        self.counters = Counters()
        self._writers: dict[str, CatalogWriter] = {}
        self._stop = threading.Event()
        config = {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            **(consumer_config or {}),
        }
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, **config)
        if is_pattern(topic):
            self.consumer.subscribe(pattern=topic)
        else:
            self.consumer.subscribe(topics=[topic])
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")

    def stop(self) -> None:
        """Finish the batch in hand, commit, and return from :meth:`run`."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self, max_idle: float | None = None) -> Counters:
        """Consume until :meth:`stop` (or ``max_idle`` seconds without messages).

        The idle clock starts once the group has given this worker its partitions: joining
        can take seconds (a broker may wait out a rebalance timeout first), which is not
        idleness. A worker that gets no partitions at all stops after ``max_idle`` + 60 s.
        """
        last_report = last_message = time.monotonic()
        joined = False
        try:
            while not self._stop.is_set():
                records = self.consumer.poll(timeout_ms=200, max_records=self.batch_size)
                now = time.monotonic()
                if not joined and (records or self.consumer.assignment()):
                    joined, last_message = True, now
                if records:
                    self._handle([m for msgs in records.values() for m in msgs])
                    last_message = now
                elif max_idle is not None and now - last_message > max_idle + (0 if joined else 60):
                    break
                if now - last_report > self.report_every:
                    self._report()
                    last_report = now
        finally:
            try:  # a last synchronous commit: the async ones may still be in flight
                self._commit()
            except Exception as err:  # the broker gone too: the next owner replays harmlessly
                log.warning("last offset commit failed (%s)", err)
            self._report()
            self.consumer.close(autocommit=False)
            self.producer.close()
        return self.counters

    # -- one batch ---------------------------------------------------------------------------

    def _handle(self, messages: list) -> None:
        by_path: dict[str, list[tuple[Any, tuple[str, Any]]]] = defaultdict(list)
        dead: list[tuple[Any, str]] = []
        for message in messages:
            try:
                pair = decode(message.value)
            except WireError as err:
                dead.append((message, str(err)))
                continue
            by_path[catalog_path(message.topic, self.template)].append((message, pair))
        for path, items in by_path.items():
            encoded = [document_bytes(m.value, pair[0]) for m, pair in items]
            result = self._write(path, [pair for _, pair in items], encoded)
            self.counters.written += result.written
            self.counters.duplicates += result.duplicates
            dead += [(items[r.index][0], str(r.error)) for r in result.rejected]
        for message, reason in sorted(
            dead, key=lambda d: (d[0].topic, d[0].partition, d[0].offset)
        ):
            self._dead_letter(message, reason)  # in the order they came
        if dead:
            self.producer.flush()
        self._commit_async()
        self.counters.consumed += len(messages)
        self.counters.batches += 1

    def _writer(self, path: str) -> CatalogWriter:
        if path not in self._writers:
            self._writers[path] = CatalogWriter(self.catalog, path)
        return self._writers[path]

    def _write(self, path: str, pairs: list, encoded: list[bytes | None]) -> Any:
        """Write, waiting out a catalog outage with the partitions paused."""
        delay = 0.5
        paused = False
        while True:
            try:
                result = self._writer(path).write_many(pairs, strict=False, encoded=encoded)
                break
            except DATABASE_AWAY as err:
                if not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                log.warning(
                    "catalog unreachable (%s); retrying in %.1f s", str(err).splitlines()[0], delay
                )
                self.consumer.poll(timeout_ms=int(delay * 1000))  # stay in the group
                delay = min(delay * 2, 10.0)
                if self._stop.is_set():
                    raise
        if paused:
            self.consumer.resume(*self.consumer.assignment())
            log.info("catalog reachable again; resuming")
        return result

    def _dead_letter(self, message: Any, reason: str) -> None:
        log.warning(
            "dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason
        )
        headers = [
            ("bluebroker-error", reason.encode()[:4000]),
            ("bluebroker-topic", message.topic.encode()),
            ("bluebroker-partition", str(message.partition).encode()),
            ("bluebroker-offset", str(message.offset).encode()),
        ]
        self.producer.send(
            self.dead_letter_topic, value=message.value or b"", key=message.key, headers=headers
        )
        self.counters.dead_lettered += 1

    def _commit_async(self) -> None:
        """Commit the batch's offsets without waiting for the broker's answer.

        A synchronous commit is a round trip to the broker after every batch, and at live
        rates (one event per batch) the next event waited behind it. Losing an async commit
        (a crash, a rebalance) only means those messages are read again, which the writer's
        idempotence makes harmless; a failed one is logged and the next commit covers it.
        """
        self.consumer.commit_async(callback=_log_commit_failure)

    def _commit(self) -> None:
        from kafka.errors import CommitFailedError

        try:
            self.consumer.commit()
        except CommitFailedError as err:  # a rebalance took the partitions: replays are no-ops
            log.warning("offsets not committed (%s); the next owner replays them harmlessly", err)

    def _report(self) -> None:
        try:
            assigned = self.consumer.assignment()
            ends = self.consumer.end_offsets(list(assigned)) if assigned else {}
            self.counters.lag = sum(
                max(0, end - self.consumer.position(tp)) for tp, end in ends.items()
            )
        except Exception:  # lag is a courtesy; never let it stop ingest
            self.counters.lag = None
        log.info("kafka ingest: %s", self.counters.line())


def _log_commit_failure(offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        log.warning("offsets not committed (%s); they are committed with the next batch", response)


def tune_gc_for_ingest() -> None:
    """Make the cyclic garbage collector run less often in an ingest process.

    A batch of a few thousand documents allocates hundreds of thousands of containers that
    all die together when the batch is written; with the default thresholds the collector
    scans them many times over for nothing (about 8% of the writer's time). Documents make no
    reference cycles, so collecting rarely loses no memory. Process-wide, hence called by the
    ``bluebroker ingest kafka`` and ``bluebroker serve --kafka`` commands, not by the worker.
    """
    gc.collect()
    gc.freeze()  # what was loaded at start-up is never garbage
    gc.set_threshold(100_000, 50, 1000)


def is_pattern(topic: str) -> bool:
    return bool(re.search(r"[*+?\[\]()^$|\\]", topic))
