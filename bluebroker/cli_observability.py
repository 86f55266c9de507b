"""Options for what an operator watches: ``serve --log-format json --metrics-public`` and
``ingest kafka --metrics-port N`` (the metrics themselves are in server/observability.py and
ingest/metrics.py)."""

from __future__ import annotations

import argparse


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="json: every log line a JSON object, with one access line per request (method, "
        "route, status, duration_ms, bytes, principal, request_id; never a query string)",
    )
    p.add_argument(
        "--metrics-public",
        action="store_true",
        help="let anyone read /metrics (default: it needs read:metadata, as the API does)",
    )


def add_worker_options(p: argparse.ArgumentParser, port: type) -> None:
    p.add_argument(
        "--metrics-port",
        metavar="PORT",
        type=port,
        help="serve the worker's Prometheus metrics at http://HOST:PORT/metrics (default: none)",
    )
    p.add_argument(
        "--metrics-host",
        metavar="HOST",
        default="127.0.0.1",
        help="address for --metrics-port (127.0.0.1; 0.0.0.0 in a container)",
    )
