"""A small per-client rate limit for the routes worth guessing at (sign-in, API keys) and for
failed sign-ins, so that a key cannot be found by trying many.

In one process's memory: with several server processes each counts its own (the limit per
client is then N times this), which still turns a guessing attack from millions of tries a
minute into a handful. ``X-Forwarded-For`` is not trusted here; behind a proxy, uvicorn's
``--forwarded-allow-ips`` gives the client's address.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from starlette.requests import HTTPConnection

from .errors import ApiError


class RateLimit:
    """At most ``per_minute`` events per client address in any sliding minute."""

    def __init__(self, per_minute: int, clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self.clients = clients
        self._hits: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, conn: HTTPConnection, what: str) -> None:
        """Count one event for the caller; ApiError 429 when over the limit."""
        client = conn.client.host if conn.client else "unknown"
        now = time.monotonic()
        with self._lock:
            hits = [t for t in self._hits.pop(client, []) if now - t < 60]
            hits.append(now)
            self._hits[client] = hits
            while len(self._hits) > self.clients:  # bounded memory: forget the oldest
                self._hits.popitem(last=False)
        if len(hits) > self.per_minute:
            wait = max(1, int(60 - (now - hits[-self.per_minute - 1])))
            raise ApiError(
                429,
                f"too many {what} from this address; try again in {wait} s",
                {"Retry-After": str(wait)},
            )
