"""The ingest worker: Kafka messages in, catalog entries out, with exactly-once effect.

A message is handled when its documents are in a committed catalog transaction, or when the
broker has acknowledged its dead letter. Offsets are committed only for handled messages, as
explicit per-partition offsets (asynchronously: the live path does not wait for the broker);
a worker that stops, fails or is killed at any moment leaves the rest for the next owner,
which reads them again, and the writer's idempotence turns the replay into no change.

Whatever is wrong with one message (undecodable, refused by the writer, a topic whose name
gives no catalog path, an error nobody foresaw) sends that message to the dead-letter topic
with the reason; only trouble with the catalog or the dead-letter topic themselves makes the
worker wait. While it waits it keeps its partitions paused and polls only to stay in the
group; partitions that a rebalance hands it meanwhile are paused too, and any record such a
poll returns is sought back, so no record is skipped.
"""

from __future__ import annotations

import gc
import logging
import re
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from bluebroker.catalog import Catalog

from .dead_letters import MAX_MESSAGE_BYTES, DeadLetterError, DeadLetters, producer_settings
from .lag import LagWatch
from .native_memory import give_back, tune_malloc
from .offsets import Offsets, Rebalance
from .wire import WireError, catalog_path, decode, document_bytes, topic_for
from .writer import CatalogWriter

log = logging.getLogger(__name__)
T = TypeVar("T")
# The catalog is away (or unusable) as a whole, as opposed to refusing one message's data.
DATABASE_AWAY = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.InternalError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)
# What one fetch may bring (kafka-python's default is 52 MB). A worker far behind got fetch
# responses that large, decoded on the client's IO thread, and its resident memory grew with
# its lag (about 35 MB over a million-event run on PostgreSQL); 2 MiB is still several of the
# worker's batches, and a single larger message is returned all the same.
FETCH_MAX_BYTES = 2 * 2**20
# PostgreSQL error classes caused by the data: data exception, integrity, program limit.
DATA_STATES = ("22", "23", "54")
# ... and by the database: connection, resources, shutdown, system, deadlock or serialization,
# no such database or schema, no permission, no such table (a schema not made or dropped).
AWAY_STATES = ("08", "53", "57", "58", "40", "3D", "3F", "42501", "42P01")


@dataclass
class Counters:
    """What the worker has done, logged every ``report_every`` seconds."""

    consumed: int = 0
    written: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    waits: int = 0  # polls made while the catalog or the dead-letter topic was away
    lag: int | None = None

    def line(self) -> str:
        lag = "?" if self.lag is None else self.lag
        return (
            f"consumed {self.consumed} written {self.written} duplicates "
            f"{self.duplicates} dead-lettered {self.dead_lettered} lag {lag}"
        )


class _Abandoned(Exception):
    """Stopped while waiting: the batch in hand stays uncommitted for the next owner."""


class _Refused(Exception):
    """An error of the data, not of the catalog: the messages concerned are dead-lettered."""


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
        dead_letter_max_bytes: int = MAX_MESSAGE_BYTES,
        batch_size: int = 2000,
        report_every: float = 10.0,
        stall_after: float = 60.0,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        from kafka import KafkaConsumer

        catalog_path(topic_for("check"), catalog_path_template)  # a bad template fails now
        if consumer_config and consumer_config.get("enable_auto_commit"):
            raise ValueError(
                "enable_auto_commit would commit messages not yet written; the worker commits "
                "offsets itself, so drop that setting"
            )
        if is_pattern(topic):
            try:
                re.compile(topic)
            except re.error as err:
                raise ValueError(
                    f"topic pattern {topic!r} is not a regular expression ({err}); "
                    "e.g. '.*\\.bluesky\\.runengine\\.documents'"
                ) from None
        if topic == dead_letter_topic:
            raise ValueError(f"{topic!r} is the dead-letter topic; ingest another topic")
        self.catalog = catalog
        self.template = catalog_path_template
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.report_every = report_every
        self.counters = Counters()
        # lag per partition, checked every report; a partition that lags and does not move
        # for ``stall_after`` seconds is reported and its fetch restarted
        self.lag = LagWatch(stall_after)
        self.ready = threading.Event()  # set once the group has assigned partitions
        self.assigned: frozenset = frozenset()  # the partitions the group gave this worker
        self.waiting: str | None = None  # why the worker is waiting, while it is
        self._writers: dict[str, CatalogWriter] = {}
        self._stop = threading.Event()
        config = {
            "group_id": group_id,
            "auto_offset_reset": "earliest",
            "fetch_max_bytes": FETCH_MAX_BYTES,
            **(consumer_config or {}),
            "enable_auto_commit": False,
        }
        self.dead_letters = DeadLetters(
            bootstrap_servers,
            dead_letter_topic,
            max_message_bytes=dead_letter_max_bytes,
            config=producer_settings(config),
        )
        try:
            self.consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, **config)
            self.offsets = Offsets(self.consumer)
            listener = Rebalance(self)
            if is_pattern(topic):  # never the dead-letter topic, or its letters would loop
                pattern = f"(?!{re.escape(dead_letter_topic)}$)(?:{topic})"
                self.consumer.subscribe(pattern=pattern, listener=listener)
            else:
                self.consumer.subscribe(topics=[topic], listener=listener)
        except BaseException:  # no producer threads left behind by a worker never made
            self.dead_letters.close()
            if hasattr(self, "consumer"):
                self.consumer.close(autocommit=False)
            raise

    def stop(self) -> None:
        """Finish the batch in hand (or abandon it, uncommitted, if waiting) and return from
        :meth:`run`. Safe from any thread and from signal handlers."""
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
        last_report = last_message = last_trim = time.monotonic()
        joined = False
        try:
            while not self._stop.is_set():
                records = self.consumer.poll(timeout_ms=200, max_records=self.batch_size)
                now = time.monotonic()
                if not joined and (records or self.consumer.assignment()):
                    joined, last_message = True, now
                if records:
                    self._handle(records)
                    last_message = now
                    if now - last_trim > 1.0:  # a batch's buffers, back to the system
                        give_back()
                        last_trim = now
                elif self.offsets.failed:
                    self.offsets.retry()
                elif max_idle is not None and now - last_message > max_idle + (0 if joined else 60):
                    break
                if now - last_report > self.report_every:
                    self._report()
                    last_report = now
        except _Abandoned as why:
            log.warning("stopped while waiting (%s); the batch in hand is not committed", why)
        finally:
            self._close()
        return self.counters

    def _close(self) -> None:
        try:
            self.offsets.last()  # what is done, confirmed; nothing more
            self._report()
            self.consumer.close(autocommit=False, timeout_ms=10_000)
        finally:
            self.dead_letters.close()

    # -- one batch ---------------------------------------------------------------------------

    def _handle(self, records: dict) -> None:
        by_path: dict[str, list[tuple[Any, tuple[str, Any], bytes | None]]] = defaultdict(list)
        dead: list[tuple[Any, str]] = []
        messages = [m for msgs in records.values() for m in msgs]
        for message in messages:
            try:  # anything wrong with one message concerns that message only
                pair = decode(message.value)
                path = catalog_path(message.topic, self.template)
                by_path[path].append((message, pair, document_bytes(message.value, pair[0])))
            except WireError as err:
                dead.append((message, str(err)))
            except Exception as err:
                dead.append((message, f"could not be read ({_describe(err)})"))
        for path, items in by_path.items():
            dead += self._place(path, items)
        if dead:
            self._dead_letter(sorted(dead, key=lambda d: (d[0].topic, d[0].partition, d[0].offset)))
        self.offsets.handled(records)
        self.counters.consumed += len(messages)
        self.counters.batches += 1

    def _place(self, path: str, items: list) -> list[tuple[Any, str]]:
        """Write ``(message, pair, bytes)`` items at ``path``; returns the refused, with why."""
        try:
            writer = self._with_catalog(lambda: self._writer(path))
        except _Refused as why:
            return [(item[0], f"cannot be placed at catalog path /{path}: {why}") for item in items]
        try:
            result = self._with_catalog(
                lambda: writer.write_many(
                    [item[1] for item in items], strict=False, encoded=[item[2] for item in items]
                )
            )
        except _Refused as why:
            if len(items) == 1:
                return [(items[0][0], f"could not be stored at /{path} ({why})")]
            log.warning("batch for /%s failed (%s); writing its messages one by one", path, why)
            return [d for item in items for d in self._place(path, [item])]
        self.counters.written += result.written
        self.counters.duplicates += result.duplicates
        return [(items[r.index][0], str(r.error)) for r in result.rejected]

    def _writer(self, path: str) -> CatalogWriter:
        if path not in self._writers:
            self._writers[path] = CatalogWriter(self.catalog, path)
        return self._writers[path]

    def _with_catalog(self, call: Callable[[], T]) -> T:
        """``call()``, waiting out a catalog outage; an error of the data raises _Refused."""
        delay = 0.5
        while True:
            try:
                result = call()
            except Exception as err:
                if not self._catalog_away(err):
                    raise _Refused(_describe(err)) from err
                self._wait(f"catalog unreachable ({_describe(err)})", delay)
                delay = min(delay * 2, 5.0)
                continue
            self._resume()
            return result

    def _catalog_away(self, err: Exception) -> bool:
        """Is the catalog itself the trouble (wait and retry), rather than the data?"""
        if not isinstance(err, sa.exc.SQLAlchemyError):
            return False
        if isinstance(err, sa.exc.DBAPIError) and err.connection_invalidated:
            return True
        state = getattr(getattr(err, "orig", None), "sqlstate", None) or ""
        if state.startswith(DATA_STATES):
            return False  # e.g. a value past an index's size limit: an OperationalError too
        if state.startswith(AWAY_STATES) or isinstance(err, DATABASE_AWAY):
            return True
        try:  # e.g. a table missing or no permission: a sound catalog answers this
            with self.catalog.engine.connect() as conn:
                conn.execute(sa.text("SELECT count(*) FROM catalogs"))
        except Exception:
            return True
        return False

    def _dead_letter(self, items: list[tuple[Any, str]]) -> None:
        """Send refused messages to the dead-letter topic, waiting until all are accepted."""
        for message, reason in items:
            log.warning(
                "refused %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason
            )
        pending, delay = list(items), 0.5
        while pending:
            before = len(pending)
            try:
                self.dead_letters.send(pending)  # removes those the broker acknowledged
            except DeadLetterError as err:
                self.counters.dead_lettered += before - len(pending)
                self._wait(str(err), delay)
                delay = min(delay * 2, 5.0)
            else:
                self.counters.dead_lettered += before
        self._resume()

    # -- waiting while paused ----------------------------------------------------------------

    def _wait(self, why: str, delay: float) -> None:
        """Wait ``delay`` seconds with every partition paused, polling to stay in the group
        (and to see a stop within half a second)."""
        if self.waiting is None:
            log.warning("%s; waiting with partitions paused", why)
        else:
            log.warning("%s; retrying in %.1f s", why, delay)
        self.waiting = why
        deadline = time.monotonic() + delay
        while True:
            if self._stop.is_set():
                raise _Abandoned(why)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.consumer.pause(*self.consumer.assignment())
            records = self.consumer.poll(timeout_ms=int(min(left, 0.5) * 1000) or 1)
            for tp, msgs in records.items():  # fetched before a pause took hold: read later
                self.consumer.seek(tp, msgs[0].offset)
            self.counters.waits += 1

    def _resume(self) -> None:
        if self.waiting is not None:
            self.waiting = None
            self.consumer.resume(*self.consumer.assignment())
            log.info("reachable again; resuming")

    def _report(self) -> None:
        try:
            self._watch_lag()
        except Exception:  # lag is a courtesy; never let it stop ingest
            self.counters.lag = None
        log.info("kafka ingest: %s", self.counters.line())

    def _watch_lag(self) -> None:
        assigned = list(self.consumer.assignment())
        ends = self.consumer.end_offsets(assigned) if assigned else {}
        positions = {tp: self.consumer.position(tp) for tp in ends}
        if self.waiting is not None:  # paused on purpose: not a stall
            self.lag.partitions.clear()
        for p in self.lag.update(positions, ends):
            log.warning(
                "kafka ingest: partition %s[%s] lags %d messages and has brought none for "
                "%.0f s; restarting its fetch (a broker that answers fetches with no records "
                "does this; on Tansu raise fetch_max_wait_ms)",
                p.topic,
                p.partition,
                p.lag,
                self.lag.clock() - p.since,
            )
            tp = next(tp for tp in positions if (tp.topic, tp.partition) == (p.topic, p.partition))
            self.consumer.seek(tp, p.position)  # drops the client's fetch state for it
        self.counters.lag = self.lag.total()


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:2000]


def tune_gc_for_ingest() -> None:
    """Make the cyclic garbage collector run less often in an ingest process, and its C
    heap give back what transient buffers used (native_memory.py).

    A batch of a few thousand documents allocates hundreds of thousands of containers that
    all die together when the batch is written; with the default thresholds the collector
    scans them many times over for nothing (about 8% of the writer's time). Documents make no
    reference cycles, so collecting rarely loses no memory. Process-wide, hence called by the
    ``bluebroker ingest kafka`` and ``bluebroker serve --kafka`` commands, not by the worker.
    """
    gc.collect()
    gc.freeze()  # what was loaded at start-up is never garbage
    gc.set_threshold(100_000, 50, 1000)
    tune_malloc()


def is_pattern(topic: str) -> bool:
    return bool(re.search(r"[*+?\[\]()^$|\\]", topic))
