"""HTTP plumbing: one keep-alive httpx client per connection, errors turned into exceptions
that carry the server's own explanation."""

from __future__ import annotations

import functools
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from .auth_flow import SignIn
from .raw_http import RawArrays, RawResponse


class ClientError(Exception):
    """The server refused a request; ``detail`` is its explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status})")
        self.status = status
        self.detail = detail


class NotFoundError(ClientError, KeyError):
    """No node at that path (HTTP 404)."""

    def __str__(self) -> str:
        return self.args[0]


class BadRequestError(ClientError, ValueError):
    """A malformed query, slice or parameter (HTTP 400/406/422)."""


class AuthenticationError(ClientError, PermissionError):
    """A missing or wrong API key (HTTP 401/403)."""


def _error(response: httpx.Response) -> ClientError:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text or response.reason_phrase
    status = response.status_code
    if status == 404:
        return NotFoundError(status, str(detail))
    if status == 401:  # the server's words are for any HTTP user; say the Python way
        return AuthenticationError(
            status,
            f"{detail} (from Python: from_uri(url, api_key='...') or set the "
            "BLUEBROKER_API_KEY environment variable)",
        )
    if status == 403:
        return AuthenticationError(status, str(detail))
    if status in (400, 406, 409, 415, 422):
        return BadRequestError(status, str(detail))
    return ClientError(status, str(detail))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one costs ~30 ms, and from_uri should not."""
    return ssl.create_default_context()


def quote_path(path: tuple[str, ...]) -> str:
    return "/".join(quote(p, safe="") for p in path)


class Transport:
    """Requests against one server's ``/api/v1``."""

    def __init__(self, api: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.api = api.rstrip("/")
        api_key = api_key or os.environ.get("BLUEBROKER_API_KEY")
        headers = {"Authorization": f"Apikey {api_key}"} if api_key else {}
        headers["Accept-Encoding"] = "zstd, gzip"
        self.http = httpx.Client(headers=headers, timeout=timeout, verify=_ssl_context())
        if not api_key:  # OpenID Connect sign-in when the server offers it (auth_flow.py)
            self.http.auth = SignIn(self.api, self.http.headers)
        self._about: dict[str, Any] | None = None
        self._raw = RawArrays(self.api, timeout, _ssl_context())

    def url(self, route: str, path: tuple[str, ...] = ()) -> str:
        tail = quote_path(path)
        return f"{self.api}/{route}/{tail}" if tail else f"{self.api}/{route}/"

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.ConnectError as err:
            raise ConnectionError(
                f"cannot reach the bluebroker server at {self.api}: {err}"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def get_json(self, route: str, path: tuple[str, ...] = (), params: Any = None) -> Any:
        return self.request("GET", self.url(route, path), params=params).json()

    def get_bytes(
        self,
        route: str,
        path: tuple[str, ...],
        params: Any = None,
        accept: str = "application/octet-stream",
    ) -> httpx.Response:
        return self.request("GET", self.url(route, path), params=params, headers={"Accept": accept})

    def get_raw(
        self, route: str, path: tuple[str, ...], params: dict[str, str] | None = None
    ) -> RawResponse | httpx.Response:
        """Raw array bytes (``application/octet-stream``), through ``http.client`` into one
        numpy buffer when it can be (raw_http.py says why), else through httpx."""
        if not self._raw.usable(self.http.auth):
            return self.get_bytes(route, path, params)
        headers = {k.lower(): v for k, v in self.http.headers.items()}
        headers["accept"] = "application/octet-stream"
        headers["accept-encoding"] = "identity"  # the server sends raw arrays as they are
        try:
            response = self._raw.get(self.url(route, path), params or {}, headers)
        except (ConnectionRefusedError, socket.gaierror) as err:
            raise ConnectionError(
                f"cannot reach the bluebroker server at {self.api}: {err}"
            ) from None
        if response.status_code >= 400:
            raise _error(
                httpx.Response(
                    response.status_code,
                    headers=list(response.headers.items()),
                    content=response.content.tobytes(),
                )
            )
        return response

    def stream(self, route: str, path: tuple[str, ...], accept: str) -> Iterator[bytes]:
        """The body in pieces as they arrive, for long responses such as document streams."""
        with self.http.stream("GET", self.url(route, path), headers={"Accept": accept}) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            yield from r.iter_bytes()

    def about(self) -> dict[str, Any]:
        if self._about is None:
            self._about = self.request("GET", f"{self.api}/").json()
        return self._about

    def close(self) -> None:
        self._raw.close()
        self.http.close()
