"""The Python HTTP client: bluebroker runs into numpy, pandas and xarray.

``from_uri("http://localhost:8000")`` returns the root container. It depends on httpx and
numpy (pandas, pyarrow and xarray when tables and streams are read), never on the server.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlsplit

from .array import ArrayClient
from .base import BaseClient
from .container import Container
from .live import Subscription, Update
from .live_table import LiveTable
from .nodes import CatalogClient, RunClient, StreamClient, fetch
from .table import ColumnsLeftOut, TableClient
from .transport import (
    AuthenticationError,
    BadRequestError,
    ClientError,
    NotFoundError,
    Transport,
)

__all__ = [
    "ArrayClient",
    "AuthenticationError",
    "BadRequestError",
    "BaseClient",
    "CatalogClient",
    "ClientError",
    "ColumnsLeftOut",
    "Container",
    "LiveTable",
    "NotFoundError",
    "RunClient",
    "StreamClient",
    "Subscription",
    "TableClient",
    "Update",
    "from_uri",
]


def from_uri(uri: str, api_key: str | None = None, timeout: float = 60.0) -> BaseClient:
    """Connect to a bluebroker server and return the node at ``uri``.

    ``http://host:8000`` is the root; ``http://host:8000/api/v1/metadata/bmm/raw`` goes
    straight to a node. The key or token comes from ``api_key``, from the URL (the
    ``http://127.0.0.1:8000/?token=...`` that ``bluebroker serve`` prints), or from
    ``$BLUEBROKER_API_KEY``.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected an http(s) URI such as http://localhost:8000, got {uri!r}")
    given = dict(parse_qsl(parts.query))  # the URL `serve` prints: ...:8000/?token=...
    api_key = api_key or given.get("token") or given.get("api_key")
    if not api_key and not os.environ.get("BLUEBROKER_API_KEY") and parts.hostname:
        # a server on this machine started with a random token left it for its own user
        from bluebroker.runtime_files import find_token

        api_key = find_token(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    head, marker, tail = parts.path.partition("/api/v1")
    api = f"{parts.scheme}://{parts.netloc}{head.rstrip('/')}/api/v1"
    path = ()
    if marker:
        route, _, node_path = tail.strip("/").partition("/")
        path = tuple(p for p in node_path.split("/") if p) if route == "metadata" else ()
    return fetch(_transport(api, api_key, timeout), path)


_transports: dict[tuple, Transport] = {}


def _transport(api: str, api_key: str | None, timeout: float) -> Transport:
    """One connection pool per server and key, shared by every ``from_uri`` in this process,
    as a browser keeps its connections: opening a client per call costs milliseconds."""
    key = (api, api_key or os.environ.get("BLUEBROKER_API_KEY"), timeout)
    if key not in _transports:
        _transports[key] = Transport(api, api_key=key[1], timeout=timeout)
    return _transports[key]
