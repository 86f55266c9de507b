"""The RunEngine side of Kafka: publish documents in the bluesky-kafka wire format.

``RE.subscribe(Publisher("bmm.bluesky.runengine.documents", "kafka:9092"))``. Messages are
keyed by the run's start uid, so one run stays in one partition, in order. The RunEngine is
never held up by a slow broker beyond a short, bounded wait: when the producer's buffer is
full the call raises :class:`PublishError` instead of blocking the scan or dropping data.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from .wire import encode

log = logging.getLogger(__name__)


_FLUSH = object()


class PublishError(RuntimeError):
    """Documents could not be handed to Kafka; the message says what to check."""


class Publisher:
    """A ``(name, doc)`` callable that publishes each document as one Kafka message."""

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str | list[str],
        key: str | None = None,
        *,
        max_pending: int = 100_000,
        block_ms: int = 50,
        flush_timeout: float = 30.0,
        **producer_config: Any,
    ) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self.key = key
        self.flush_timeout = flush_timeout
        config = {
            "acks": "all",
            "linger_ms": 0,  # a document leaves at once: live views wait for it
            "max_request_size": 8 * 2**20,
            "retries": 10,
            **producer_config,
        }
        self.max_message = int(config["max_request_size"]) - 1024
        self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **config)
        self._producer.partitions_for(topic)  # learn the topic now, not on the first document
        # From here on an unreachable broker fails fast instead of stalling the RunEngine.
        self._producer.config["max_block_ms"] = block_ms
        self._runs: dict[str, str] = {}  # descriptor/resource/stream_resource uid -> run uid
        self._failures: list[str] = []
        self._lock = threading.Lock()
        # Documents handed over but not yet acknowledged: the bound on what a slow broker can
        # make us hold in memory before the RunEngine is told (after ``block_ms`` of grace).
        self.max_pending = max_pending
        self.block_ms = block_ms
        self._pending = 0
        self._drained = threading.Condition(self._lock)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._pump, name="bluebroker-publisher", daemon=True)
        self._thread.start()

    def __call__(self, name: str, doc: dict) -> None:
        with self._lock:
            if self._failures:
                raise PublishError(
                    "earlier documents failed to reach Kafka: " + "; ".join(self._failures[:3])
                )
        key = self.key or self._run_of(name, doc)
        payload = encode(name, doc)  # now, on the caller's thread: the document as it is
        if len(payload) > self.max_message:
            if name == "event_page" and len(doc["uid"]) > 1:
                for half in _halves(doc):  # too big for one message: as two smaller pages
                    self(name, half)
                return
            raise PublishError(
                f"{name} {doc.get('uid', '')} is {len(payload)} bytes, more "
                "than one Kafka message may hold; raise max_request_size"
            )
        self._reserve(name, doc)
        self._queue.put(
            (key.encode() if key else None, payload, name, doc.get("uid") or doc.get("datum_id"))
        )
        if name == "stop":
            self.flush()

    def _reserve(self, name: str, doc: dict) -> None:
        """Count the document as pending, or refuse it when too many are (a stuck broker)."""
        with self._drained:
            if self._pending >= self.max_pending:
                self._drained.wait_for(
                    lambda: self._pending < self.max_pending, timeout=self.block_ms / 1000
                )
            if self._pending >= self.max_pending:
                raise PublishError(
                    f"{self._pending} documents are waiting for the Kafka broker "
                    f"({self.topic}), which is not taking them as fast as they come; "
                    f"{name} {doc.get('uid', '')} was not sent. Check the broker, or raise "
                    "max_pending"
                )
            self._pending += 1

    def _pump(self) -> None:
        """The sender thread: kafka-python's send costs tens of microseconds, kept off the
        RunEngine's thread."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            if item is _FLUSH:
                self._producer.flush(timeout=self.flush_timeout)
                continue
            key, payload, name, uid = item
            try:
                future = self._producer.send(self.topic, value=payload, key=key)
            except Exception as err:  # KafkaTimeoutError and friends: reported to the caller
                self._failed(err, name, uid)
                continue
            future.add_callback(lambda _: self._settled())
            future.add_errback(self._failed, name, uid)

    def _settled(self) -> None:
        with self._drained:
            self._pending -= 1
            self._drained.notify_all()

    def _failed(self, err: Exception, name: str, uid: str | None) -> None:
        message = f"{name} {uid}: {type(err).__name__}: {err}"
        log.error("document not delivered to Kafka: %s", message)
        with self._lock:
            self._failures.append(message)
        self._settled()

    def _run_of(self, name: str, doc: dict) -> str | None:
        """The start uid a document belongs to, which is its message key."""
        if name == "start":
            return doc["uid"]
        if name in ("stop", "descriptor", "resource", "stream_resource"):
            run = doc.get("run_start")
            if run and name != "stop":
                self._runs[doc["uid"]] = run
            return run
        parent = {
            "event": "descriptor",
            "event_page": "descriptor",
            "datum": "resource",
            "datum_page": "resource",
            "stream_datum": "stream_resource",
        }.get(name)
        return self._runs.get(doc.get(parent, "")) if parent else None

    def flush(self) -> None:
        """Wait until every document published so far is acknowledged by the broker."""
        self._queue.put(_FLUSH)
        with self._drained:
            done = self._drained.wait_for(lambda: self._pending == 0, timeout=self.flush_timeout)
            if not done:
                raise PublishError(
                    f"{self._pending} documents were not acknowledged by the "
                    f"Kafka broker within {self.flush_timeout} s"
                )
            if self._failures:
                raise PublishError(
                    "documents failed to reach Kafka: " + "; ".join(self._failures[:3])
                )

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.flush_timeout)
        self._producer.close(timeout=self.flush_timeout)


def _halves(page: dict) -> tuple[dict, dict]:
    n = len(page["uid"]) // 2

    def part(sl: slice) -> dict:
        out = dict(page)
        for key in ("uid", "seq_num", "time"):
            out[key] = list(page[key])[sl]
        for key in ("data", "timestamps", "filled"):
            out[key] = {k: v[sl] for k, v in page.get(key, {}).items()}
        return out

    return part(slice(None, n)), part(slice(n, None))
