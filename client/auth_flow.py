"""Signing the Python client in to a server that offers OpenID Connect: the device-code flow.

``from_uri(url)`` with no key against such a server gets a 401; this module then asks the
server how to sign in (``/api/v1/auth/methods``), starts a device code, shows the person a URL
and a short code to confirm in a browser, and polls until they have signed in with their
facility's login, as Tiled's client does. The access and refresh tokens are kept per server in
the user's cache folder (``~/.cache/bluebroker/tokens/``, a 0700 folder of 0600 files), so the
next session starts signed in; an expired access token is refreshed without asking anyone.

Refresh tokens rotate on the server, and a rotated-away one presented again ends the session
(it looks stolen). Several Python processes sharing one cache therefore refresh under a file
lock and re-read the cache first, so they never present a token another process has spent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx


class SignInError(PermissionError):
    """Signing in did not work (denied, expired, or the server refused); the message says
    what happened and what to do."""


def show_prompt(url: str, user_code: str) -> None:
    """Tell the person where to sign in (stderr, so notebooks and pipes both show it)."""
    print(
        f"To sign in, open {url} in a browser and check that it shows the code {user_code}.\n"
        "Waiting for you to sign in ...",
        file=sys.stderr,
        flush=True,
    )


def cache_folder() -> Path:
    """Where tokens are kept: $BLUEBROKER_TOKEN_CACHE, else the user's cache folder."""
    given = os.environ.get("BLUEBROKER_TOKEN_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bluebroker" / "tokens"


def cache_file(api: str) -> Path:
    """One file per server (scheme, host, port and path hashed in, readable host kept)."""
    parts = urlsplit(api)
    label = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.netloc)[:80]
    return cache_folder() / f"{label}-{hashlib.sha256(api.encode()).hexdigest()[:16]}.json"


def read_tokens(path: Path) -> dict | None:
    """The cached tokens, or None. A file others may read, or that another user owns, is
    ignored: a token there may have been planted or copied."""
    try:
        info = path.stat()
        if info.st_mode & 0o077 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            return None
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(found, dict) and all(
        isinstance(found.get(k), str) for k in ("access_token", "refresh_token")
    )
    return found if ok else None


def write_tokens(path: Path, tokens: dict) -> None:
    """Write atomically, 0600 from the first byte, in a 0700 folder."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(tokens, out)
    os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # Windows: one process at a time is the user's to keep
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _stamp(tokens: dict) -> dict:
    """Note when to refresh: a little before the access token expires."""
    lifetime = float(tokens.get("expires_in", 60))
    tokens = {k: tokens[k] for k in ("access_token", "refresh_token", "principal") if k in tokens}
    tokens["refresh_at"] = time.time() + lifetime - min(30.0, lifetime / 4)
    return tokens


_SHOW = show_prompt


def _watched() -> bool:
    """Is someone there to read a sign-in prompt: a terminal, or a notebook?"""
    if "ipykernel" in sys.modules:
        return True
    return any(getattr(f, "isatty", lambda: False)() for f in (sys.stdin, sys.stderr))


class SignIn(httpx.Auth):
    """httpx authentication for one server: cached bearer tokens, refreshed when they
    expire, and the device-code flow when a 401 says sign-in is needed and offered.

    ``shared_headers`` (the client's own headers) get the current ``Authorization`` too, so
    websockets opened with them (live subscriptions) are signed in as well."""

    requires_response_body = True

    def __init__(
        self,
        api: str,
        shared_headers: httpx.Headers | None = None,
        prompt: Callable[[str, str], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api = api.rstrip("/")
        self.path = cache_file(self.api)
        self.shared_headers = shared_headers
        self.prompt = prompt
        self.timeout = timeout
        self._offered: dict | bool | None = False  # False: not asked yet
        self._lock = threading.Lock()
        self._device_lock = threading.Lock()

    # -- httpx's hook ----------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        tokens = self._current()
        if tokens is not None:
            self._use(request, tokens)
        response = yield request
        if response.status_code != 401 or self._routes() is None:
            return
        stale, tokens = tokens, self._renewed(tokens)
        if tokens is None and self.prompt is None and show_prompt is _SHOW and not _watched():
            # a script run by cron or a batch system: nobody would see the code, and it would
            # wait a quarter of an hour for nothing
            raise SignInError(
                f"{self.api} needs a sign-in and nobody is at a terminal to do it: run "
                f"`bluebroker login {self.api.removesuffix('/api/v1')}` in a terminal first (the "
                "tokens are kept for later runs), or use an API key (api_key=... or "
                "BLUEBROKER_API_KEY)"
            )
        tokens = tokens or self._signed_in(stale)
        self._use(request, tokens)
        yield request

    def _signed_in(self, refused: dict | None) -> dict:
        """One device flow at a time: threads that were refused together (a script and its
        live subscription) take the tokens the first one got."""
        with self._device_lock:
            now = read_tokens(self.path)
            if now is not None and (
                refused is None or now["access_token"] != refused["access_token"]
            ):
                return now
            return self._device_flow()

    def _use(self, request: httpx.Request, tokens: dict) -> None:
        value = f"Bearer {tokens['access_token']}"
        request.headers["Authorization"] = value
        if self.shared_headers is not None:
            self.shared_headers["Authorization"] = value

    # -- tokens ----------------------------------------------------------------------------

    def _current(self) -> dict | None:
        """Cached tokens, refreshed first when the access token is about to expire."""
        tokens = read_tokens(self.path)
        if tokens is None or tokens.get("refresh_at", 0) > time.time():
            return tokens
        return self._renewed(tokens)

    def _renewed(self, stale: dict | None) -> dict | None:
        """Refresh ``stale`` (under the lock, unless another process already did)."""
        if stale is None:
            return None
        with self._lock, _file_lock(self.path):
            now = read_tokens(self.path)
            if now is not None and now["refresh_token"] != stale["refresh_token"]:
                return now  # refreshed by someone else meanwhile
            routes = self._routes()
            if routes is None:
                return None
            got = self._post(routes["refresh"], {"refresh_token": stale["refresh_token"]})
            if got.status_code != 200:
                with contextlib.suppress(OSError):
                    self.path.unlink()  # revoked or expired: sign in again
                return None
            tokens = _stamp(got.json())
            write_tokens(self.path, tokens)
            return tokens

    def _device_flow(self) -> dict:
        routes = self._routes()
        assert routes is not None
        start = self._post(routes["device_code"], None)
        if start.status_code != 200:
            raise SignInError(f"the server would not start a sign-in: {_detail(start)}")
        offer = start.json()
        (self.prompt or show_prompt)(offer["verification_uri_complete"], offer["user_code"])
        interval = float(offer.get("interval", 5))
        deadline = time.monotonic() + float(offer.get("expires_in", 900))
        while time.monotonic() < deadline:
            got = self._post(routes["token"], {"device_code": offer["device_code"]})
            if got.status_code == 200:
                tokens = _stamp(got.json())
                with _file_lock(self.path):
                    write_tokens(self.path, tokens)
                return tokens
            error = _error_code(got)
            if error == "slow_down":
                interval += 5  # RFC 8628 3.5
            elif error != "authorization_pending":
                raise SignInError(f"signing in did not work: {_detail(got)}; try again")
            time.sleep(interval)  # the server's pace between polls (RFC 8628 3.4)
        raise SignInError("nobody signed in before the code expired; try again")

    # -- talking to the server ---------------------------------------------------------------

    def _routes(self) -> dict | None:
        """The server's sign-in routes (absolute URLs), or None when it offers none."""
        if self._offered is False:
            try:
                got = httpx.get(f"{self.api}/auth/methods", timeout=self.timeout)
                found = got.json().get("oidc") if got.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError):
                found = None
            root = "{0.scheme}://{0.netloc}".format(urlsplit(self.api))
            self._offered = (
                {k: root + v for k, v in found.items() if isinstance(v, str) and v.startswith("/")}
                if isinstance(found, dict)
                else None
            )
        return self._offered or None

    def _post(self, url: str, body: dict | None) -> httpx.Response:
        try:
            return httpx.post(url, json=body, timeout=self.timeout)
        except httpx.HTTPError as err:
            raise SignInError(f"cannot reach {url} to sign in: {err}") from None


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        return ""


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:300]
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


def _api(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL such as https://data.example.org, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.partition('/api/v1')[0].rstrip('/')}/api/v1"


def sign_in(url: str, prompt: Callable[[str, str], None] | None = None) -> str:
    """Sign in to the server at ``url`` now (the device-code flow, unless cached tokens
    still work) and return who the server says you are."""
    api = _api(url)
    auth = SignIn(api, prompt=prompt)
    if auth._routes() is None:
        raise SignInError(f"{api} offers no OpenID Connect sign-in; use an API key there")
    tokens = auth._current() or auth._device_flow()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    who = httpx.get(f"{api}/auth/whoami", headers=headers, timeout=auth.timeout)
    if who.status_code == 401:  # revoked meanwhile: once more, from the start
        with contextlib.suppress(OSError):
            auth.path.unlink()
        tokens = auth._device_flow()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        who = httpx.get(f"{api}/auth/whoami", headers=headers, timeout=auth.timeout)
    if who.status_code != 200:
        raise SignInError(f"signed in, but the server says: {_detail(who)}")
    return str(who.json().get("id"))


def sign_out(url: str) -> bool:
    """End this user's session with the server at ``url`` and forget its tokens; whether a
    session was ended."""
    api = _api(url)
    path = cache_file(api)
    tokens = read_tokens(path)
    with contextlib.suppress(OSError):
        path.unlink()
    if tokens is None:
        return False
    try:
        got = httpx.post(f"{api}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    except httpx.HTTPError:
        return False
    return got.status_code == 200 and got.json().get("revoked", 0) > 0
