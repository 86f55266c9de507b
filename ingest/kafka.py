"""The RunEngine side of Kafka: publish documents in the bluesky-kafka wire format.

``RE.subscribe(Publisher("bmm.bluesky.runengine.documents", "kafka:9092"))``. Messages are
keyed by the run's start uid, so one run stays in one partition, in order. The RunEngine is
never held up by a slow broker beyond a short, bounded wait: when the producer's buffer is
full the call raises :class:`PublishError` instead of blocking the scan or dropping data.

Sending is librdkafka's (confluent-kafka, as bluesky-kafka's own Publisher): its threads are
C, so handing a document over costs the RunEngine a few microseconds and no interpreter
lock, and a document is on the wire well under a millisecond later. kafka-python's producer
took about a millisecond of Python threads per document for the same (the ingest worker,
which reads in batches, stays on kafka-python).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .wire import decode, encode

log = logging.getLogger(__name__)
# confluent-kafka's own keyword names, passed as they are (every other underscore is a dot).
_PYTHON_KEYS = {"error_cb", "stats_cb", "throttle_cb", "oauth_cb", "logger"}


class PublishError(RuntimeError):
    """Documents could not be handed to Kafka; the message says what to check."""


class Publisher:
    """A ``(name, doc)`` callable that publishes each document as one Kafka message.

    ``producer_config`` adds librdkafka properties (``**{"security.protocol": "SSL"}``;
    underscores may stand for the dots: ``security_protocol="SSL"``) and confluent-kafka's
    callbacks (``error_cb``, ``oauth_cb``...). Delivery reports are the Publisher's own.
    """

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str | list[str],
        key: str | None = None,
        *,
        max_pending: int = 100_000,
        block_ms: int = 50,
        flush_timeout: float = 30.0,
        max_request_size: int = 8 * 2**20,
        connect_timeout: float = 10.0,
        **producer_config: Any,
    ) -> None:
        from confluent_kafka import KafkaError, KafkaException, Producer

        if "on_delivery" in producer_config or "on.delivery" in producer_config:
            raise ValueError(
                "on_delivery is the Publisher's own (it turns failed deliveries into "
                "PublishError); use error_cb to watch the producer"
            )

        self.topic = topic
        self.key = key
        self.flush_timeout = flush_timeout
        self.block_ms = block_ms
        self.max_message = max_request_size - 1024
        servers = bootstrap_servers
        if isinstance(servers, list):
            servers = ",".join(servers)
        config = {
            "bootstrap.servers": servers,
            "acks": "all",
            "enable.idempotence": True,  # retries never reorder or repeat a run's documents
            "linger.ms": 0,  # a document leaves at once: live views wait for it
            "message.max.bytes": max_request_size,
            # Documents handed over but not yet acknowledged: the bound on what a slow broker
            # can make us hold in memory before the RunEngine is told (after block_ms).
            "queue.buffering.max.messages": max_pending,
            "on_delivery": self._delivered,
            "logger": log,
            **{
                k if k in _PYTHON_KEYS else k.replace("_", "."): v
                for k, v in producer_config.items()
            },
        }
        self._producer = Producer(config)
        self._runs: dict[str, str] = {}  # descriptor/resource/stream_resource uid -> run uid
        self._failures: list[str] = []
        self._lock = threading.Lock()
        try:  # learn the topic now: an unreachable broker is said here, not mid-scan
            found = self._producer.list_topics(topic, timeout=connect_timeout).topics.get(topic)
        except KafkaException as err:
            raise PublishError(
                f"could not reach Kafka at {servers} within {connect_timeout:g} s "
                f"({_reason(err)}); check bootstrap_servers and that the broker is running"
            ) from None
        error = getattr(found, "error", None)
        if error is not None and error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        ):
            raise PublishError(
                f"the Kafka broker at {servers} has no topic {topic!r} for us ({error.str()});"
                " create it, or check the name and this client's permissions"
            )

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
        self._produce(key.encode() if key else None, payload, name, doc)
        if name == "stop":
            self.flush()

    def _produce(self, key: bytes | None, payload: bytes, name: str, doc: dict) -> None:
        """Hand the message to librdkafka; when its buffer is full, give the broker
        ``block_ms`` to take some before refusing the document."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + self.block_ms / 1000
        while True:
            try:
                self._producer.produce(self.topic, payload, key)
                break
            except BufferError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishError(
                        f"{len(self._producer)} documents are waiting for the Kafka broker "
                        f"({self.topic}), which is not taking them as fast as they come; "
                        f"{name} {doc.get('uid', '')} was not sent. Check the broker, or "
                        "raise max_pending"
                    ) from None
                self._producer.poll(left)  # returns early if any report came: loop
            except KafkaException as err:  # a fatal producer error: say it, in our words
                raise PublishError(
                    f"{name} {doc.get('uid', '')} was not sent to Kafka ({_reason(err)})"
                ) from None
        self._producer.poll(0)  # serve delivery reports (cheap; none waits)

    def _delivered(self, err: Any, message: Any) -> None:
        if err is None:
            return
        try:
            name, doc = decode(message.value())
            what = f"{name} {doc.get('uid') or doc.get('datum_id', '')}"
        except Exception:
            what = "a document"
        text = f"{what}: {err.str()}"
        log.error("document not delivered to Kafka: %s", text)
        with self._lock:
            self._failures.append(text)

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
        left = self._producer.flush(self.flush_timeout)
        if left:
            raise PublishError(
                f"{left} documents were not acknowledged by the Kafka broker within "
                f"{self.flush_timeout} s"
            )
        with self._lock:
            if self._failures:
                raise PublishError(
                    "documents failed to reach Kafka: " + "; ".join(self._failures[:3])
                )

    def close(self) -> None:
        """Send what is still buffered, waiting at most ``flush_timeout``; raises
        :class:`PublishError` if some documents did not make it."""
        self.flush()


def _reason(err: Exception) -> str:
    """librdkafka's words for a KafkaException (its first argument is a KafkaError)."""
    first = err.args[0] if err.args else None
    return first.str() if hasattr(first, "str") else str(err)


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
