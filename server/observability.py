"""What an operator watches: Prometheus metrics and structured access logs.

Requests are labelled by route template (``/api/v1/metadata/{path:path}``), never by the
raw path, so the number of series stays bounded however many runs are read. The state of
the process (live subscribers and their queues, the database pool, the Kafka ingest under
``serve --kafka``) is read at each scrape rather than counted as it changes, so the hot
paths do no extra work. An access log line never holds a query string: tokens can ride in
``?token=`` and ``?api_key=``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("bluebroker.access")
UNMATCHED = "unmatched"  # every path no route serves: one label, not one per typo
_REQUEST_ID = re.compile(r"[\w.:-]{1,64}")
_JSON = {"on": False}  # set by use_json_logs: the log format is the process's
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """One app's metrics, in a registry of its own (several apps can live in one process)."""

    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bluebroker_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "bluebroker_http_request_duration_seconds",
            "time from a request's arrival to its last byte sent",
            ["method", "route"], buckets=BUCKETS, registry=self.registry,
        )
        self.sent = Counter(
            "bluebroker_http_response_bytes", "bytes of response bodies sent (after compression)",
            ["route"], registry=self.registry,
        )
        self.registry.register(_StateCollector(app))
        # (method, route, status) -> its three series: labels() checks and locks on every
        # call; routes are templates, so this stays as small as the series themselves
        self._series: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float, sent: int) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
                self.sent.labels(route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
        series[2].inc(sent)


class _StateCollector(Collector):
    """Live subscribers, their queues, the database pool and the ingest worker, at scrape
    time. Scraped on the event loop (``/metrics`` is async), where the live hub lives."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        state = self.app.state
        subscribers = []
        hub = getattr(state, "hub", None)
        for topic in list(getattr(hub, "topics", {}).values()):
            subscribers += list(topic.subscribers)
        yield _gauge("bluebroker_live_subscribers", "live subscriptions open", len(subscribers))
        yield _gauge(
            "bluebroker_live_queue_messages", "messages queued for live subscribers, summed",
            sum(s.queue.qsize() for s in subscribers),
        )
        yield _gauge(
            "bluebroker_live_queue_messages_max", "the longest live subscriber's queue",
            max((s.queue.qsize() for s in subscribers), default=0),
        )
        yield _gauge(
            "bluebroker_live_queue_bytes", "bytes queued for live subscribers, summed",
            sum(s.queued_bytes for s in subscribers),
        )
        pool = state.catalog.engine.pool
        size = getattr(pool, "size", None)
        checked = getattr(pool, "checkedout", None)
        if callable(size) and callable(checked):  # QueuePool (PostgreSQL, SQLite files)
            yield _gauge("bluebroker_db_pool_size", "database connections the pool keeps", size())
            yield _gauge(
                "bluebroker_db_pool_checked_out", "database connections in use", checked()
            )
        ingest = getattr(state, "ingest", None)
        if ingest is not None:
            from bluebroker.ingest.metrics import IngestCollector

            yield from IngestCollector(lambda: ingest.worker, lambda: ingest.restarts).collect()


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def route_of(scope: Scope) -> str:
    """The matched route's template, or ``unmatched``."""
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class ObservabilityMiddleware:
    """Times every HTTP request, counts it by route template and status, gives it a request
    id (``X-Request-ID``: the caller's, if it is a plain token, else a new one) and, once
    :func:`use_json_logs` was called, logs it as one JSON line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = ""
        for key, value in scope.get("headers") or ():
            if key == b"x-request-id":
                given = value.decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        seen = {"status": 500, "bytes": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = list(message.get("headers") or ())
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            self.metrics.observe(scope["method"], route, seen["status"], seconds, seen["bytes"])
            if _JSON["on"]:
                principal = (scope.get("state") or {}).get("principal")
                access_log.info(
                    "request",
                    extra={
                        "access": {
                            "method": scope["method"],
                            "route": route,
                            "path": scope.get("path", ""),  # never the query string
                            "status": seen["status"],
                            "duration_ms": round(seconds * 1000, 3),
                            "bytes": seen["bytes"],
                            "principal": getattr(principal, "id", None),
                            "request_id": request_id,
                        }
                    },
                )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an access record's
    fields (log collectors parse these without a pattern per message)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if access is not None:
            out.update(access)
        else:
            out["message"] = record.getMessage()
            if record.exc_info:
                out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def json_logs() -> bool:
    """Whether :func:`use_json_logs` was called (uvicorn's own lines then go the same way)."""
    return _JSON["on"]


def use_json_logs(verbose: bool = False) -> None:
    """Every log line as JSON on stderr, access lines included (``--log-format json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    access_log.setLevel(logging.INFO)
    _JSON["on"] = True
