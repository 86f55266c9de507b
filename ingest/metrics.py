"""Prometheus metrics of a Kafka ingest worker: what it consumed, wrote and dead-lettered, and
its lag per partition, read from the worker at each scrape (nothing is counted twice, and the
worker's loop does no extra work for them).

``bluebroker ingest kafka --metrics-port N`` serves them at ``http://HOST:N/metrics``;
``serve --kafka`` adds them to the server's ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

COUNTERS = (  # Counters field, metric name (without _total), help
    ("consumed", "bluebroker_ingest_messages_consumed", "Kafka messages taken from the topics"),
    ("written", "bluebroker_ingest_documents_written", "documents written into the catalog"),
    ("duplicates", "bluebroker_ingest_documents_duplicate", "documents already in the catalog"),
    ("dead_lettered", "bluebroker_ingest_dead_letters", "messages sent to the dead-letter topic"),
    ("batches", "bluebroker_ingest_batches", "catalog transactions committed"),
)


class IngestCollector(Collector):
    """Reads ``worker()`` (a KafkaIngestWorker, or None while none runs) at each scrape.

    Counters restart from zero with a new worker (a restart under ``serve --kafka``), which
    Prometheus's ``rate()`` takes as a counter reset."""

    def __init__(self, worker: Callable[[], Any], restarts: Callable[[], int] | None = None):
        self.worker = worker
        self.restarts = restarts

    def collect(self) -> Iterator[Metric]:
        worker = self.worker()
        up = GaugeMetricFamily("bluebroker_ingest_up", "1 while an ingest worker consumes")
        up.add_metric([], 0 if worker is None else 1)
        yield up
        if self.restarts is not None:
            yield CounterMetricFamily(
                "bluebroker_ingest_restarts", "ingest workers started again after dying",
                value=self.restarts(),
            )
        if worker is None:
            return
        counters = worker.counters
        for field, name, text in COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(counters, field))
        lag = GaugeMetricFamily(
            "bluebroker_ingest_lag", "messages behind the end of the partition",
            labels=["topic", "partition"],
        )
        stalled = GaugeMetricFamily(
            "bluebroker_ingest_stalled",
            "1 for a partition that lags and has not moved for the stall time",
            labels=["topic", "partition"],
        )
        stuck = {(p.topic, p.partition) for p in worker.lag.stalled()}
        for p in list(worker.lag.partitions.values()):
            labels = [p.topic, str(p.partition)]
            lag.add_metric(labels, p.lag)
            stalled.add_metric(labels, 1 if (p.topic, p.partition) in stuck else 0)
        yield lag
        yield stalled


def serve_worker_metrics(worker: Any, host: str, port: int) -> None:
    """``/metrics`` of one ingest worker on ``host:port`` (a daemon thread)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(IngestCollector(lambda: worker))
    start_http_server(port, addr=host, registry=registry)
