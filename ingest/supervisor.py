"""Keeps a Kafka ingest worker running in a thread of a longer-lived process
(``bluebroker serve --kafka``): a worker that dies is logged and started again with backoff,
and its state is there for ``/healthz`` to show, so a dead ingest never hides behind a
healthy-looking server.

A worker that dies commits only what it had handled, so starting a new one (which reads the
uncommitted messages again) loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from bluebroker.catalog import Catalog

log = logging.getLogger(__name__)


class IngestSupervisor:
    """Run ``KafkaIngestWorker(catalog, **kafka)`` in a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        catalog: Catalog,
        kafka: dict[str, Any],
        *,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self.catalog = catalog
        self.kafka = kafka
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.restarts = 0
        self.error: str | None = None  # why the last worker died, while none runs
        self.state = "starting"  # starting, running, restarting, stopped
        self.worker: Any = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="bluebroker-kafka", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the worker (it finishes or abandons its batch, uncommitted) and wait for it."""
        self._stop.set()
        with self._lock:
            worker = self.worker
        if worker is not None:
            worker.stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` shows: ``ok`` is False while no worker consumes."""
        worker = self.worker
        running = self.state == "running" and worker is not None
        waiting = worker.waiting if running else None
        stalled = worker.lag.stalled() if running else []
        state = "waiting" if waiting else "stalled" if stalled else self.state
        out: dict[str, Any] = {
            "state": state,
            "ok": state == "running",
            "topic": self.kafka.get("topic"),
            "restarts": self.restarts,
        }
        if waiting:
            out["waiting_for"] = waiting
        if self.error and self.state != "running":
            out["error"] = self.error
        if stalled:  # partitions that lag and bring nothing (see ingest/lag.py)
            out["stalled"] = [
                {"topic": p.topic, "partition": p.partition, "lag": p.lag} for p in stalled
            ]
        if running:
            counters = worker.counters
            out["counters"] = {
                "consumed": counters.consumed,
                "written": counters.written,
                "dead_lettered": counters.dead_lettered,
                "lag": counters.lag,
            }
        return out

    def _loop(self) -> None:
        from .consumer import KafkaIngestWorker

        delay = self.first_delay
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                worker = KafkaIngestWorker(self.catalog, **self.kafka)
                with self._lock:
                    self.worker = worker
                if self._stop.is_set():  # stop() came while the worker was being made
                    worker.stop()
                self.state, self.error = "running", None
                worker.run()
                if self._stop.is_set():
                    break
                raise RuntimeError("the worker returned without being stopped")
            except Exception as err:
                # /healthz is open to anyone: the kind of error only; the log has the rest
                self.error = f"{type(err).__name__} (see the server log)"
                if time.monotonic() - started > 10 * self.max_delay:
                    delay = self.first_delay  # it had run well for a long while
                self.state = "restarting"
                log.exception("kafka ingest stopped (%s); starting it again in %.0f s", err, delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.max_delay)
                self.restarts += 1
            finally:
                with self._lock:
                    self.worker = None
        self.state = "stopped"
