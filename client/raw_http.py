"""Array bytes over the standard library's ``http.client``, received into one numpy buffer.

Why not httpx for these: receiving a 4 MB slice costs httpx 5-8 ms of CPU on a loopback
connection (h11 parses each 64 KiB read through several Python layers and copies each piece
several times before joining them), against about 1 ms here, where the body is read with
``readinto`` straight into a preallocated array of the announced ``Content-Length`` and the
caller views it as the array (no further copy). Everything else the client does (JSON,
sign-in, proxies, redirects) stays with httpx: this path is taken only for a plain API key
(or none) and no proxy for the server's address; otherwise :meth:`RawArrays.usable` says no.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np

# A kept connection the server has closed meanwhile fails on the next request: sent again
# once on a fresh connection (a GET changes nothing).
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class RawResponse:
    """What the array reader needs of a response: status, headers, the body as uint8."""

    def __init__(self, status: int, headers: Mapping[str, str], content: np.ndarray) -> None:
        self.status_code = status
        self.headers = headers  # http.client's message: case-insensitive ``get``
        self.content = content


class RawArrays:
    """One kept ``http.client`` connection per thread to one server (``http.client``
    connections are not thread-safe)."""

    def __init__(self, api: str, timeout: float, context: ssl.SSLContext) -> None:
        parts = urlsplit(api)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname or "", parts.port
        self.timeout, self.context = timeout, context
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._direct: bool | None = None

    def usable(self, auth: Any) -> bool:
        """Only without a sign-in flow (httpx's ``auth``) and without a proxy for this
        host: both are httpx's business."""
        if auth is not None or self.scheme not in ("http", "https") or not self.host:
            return False
        if self._direct is None:  # decided once, as httpx decides its proxies once per client
            self._direct = self._no_proxy()  # (looking costs ~0.4 ms: it scans os.environ)
        return self._direct

    def _no_proxy(self) -> bool:
        proxies = urllib.request.getproxies()
        if not (proxies.get(self.scheme) or proxies.get("all")):
            return True
        return bool(urllib.request.proxy_bypass(self.host))

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            conn.close()
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str]) -> RawResponse:
        """GET ``url`` (on this server) with ``params``; the body read into a uint8 array."""
        target = urlsplit(url).path + (f"?{urlencode(params)}" if params else "")
        for attempt in range(2):
            conn = self._connection(fresh=attempt > 0)
            try:
                conn.request("GET", target, headers=dict(headers))
                response = conn.getresponse()
            except STALE:
                if attempt:
                    self._drop()
                    raise
                continue
            except BaseException:
                self._drop()  # a half-done exchange leaves the connection unusable
                raise
            try:
                return RawResponse(response.status, response.msg, _body(response))
            except BaseException:
                self._drop()
                raise
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _body(response: http.client.HTTPResponse) -> np.ndarray:
    """The whole body in one array: read into it in place when its length is announced."""
    length = response.getheader("content-length")
    if length is None or not length.isdigit():
        return np.frombuffer(bytearray(response.read()), dtype=np.uint8)
    out = np.empty(int(length), dtype=np.uint8)
    view, done = memoryview(out), 0
    while done < out.size:
        got = response.readinto(view[done:])
        if not got:
            raise http.client.IncompleteRead(bytes(view[:done]), out.size - done)
        done += got
    response.close()
    return out
