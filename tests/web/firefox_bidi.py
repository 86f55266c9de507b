"""A small WebDriver BiDi client for Debian's Firefox ESR, for the web page's Firefox tests.

Why not Playwright: its own Firefox (Juggler protocol) cannot be downloaded here, and its
WebDriver BiDi path needs commands (``emulation.*``) that Firefox ESR does not have yet. The
BiDi standard itself is enough for what the tests do: open a page, run JavaScript in it, press
keys and click with real input events, size the viewport, take screenshots, and hear about
uncaught JavaScript errors (``log.entryAdded``).

The browser runs headless in a throw-away profile whose prefs keep it off the network (no
updates, telemetry, experiments, safe browsing or captive-portal probes): only the test's own
loopback server is ever contacted.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

FIREFOX = os.environ.get("BLUEBROKER_TEST_FIREFOX", "/usr/bin/firefox-esr")
TIMEOUT = 30.0  # seconds: generous, the tests run beside others on a loaded machine

# Prefs that keep a test browser quiet and offline (user.js is read at every start).
_OFF = (  # boolean prefs turned off
    "app.update.auto", "app.normandy.enabled", "app.shield.optoutstudies.enabled",
    "browser.aboutwelcome.enabled", "browser.discovery.enabled", "browser.newtabpage.enabled",
    "browser.ping-centre.telemetry", "browser.region.update.enabled",
    "browser.safebrowsing.blockedURIs.enabled", "browser.safebrowsing.downloads.enabled",
    "browser.safebrowsing.downloads.remote.enabled", "browser.safebrowsing.malware.enabled",
    "browser.safebrowsing.phishing.enabled", "browser.search.update",
    "browser.shell.checkDefaultBrowser", "browser.topsites.contile.enabled",
    "browser.urlbar.suggest.quicksuggest.sponsored", "datareporting.healthreport.uploadEnabled",
    "datareporting.policy.dataSubmissionEnabled", "extensions.blocklist.enabled",
    "extensions.getAddons.cache.enabled", "extensions.update.enabled",
    "messaging-system.rsexperimentloader.enabled", "network.captive-portal-service.enabled",
    "network.connectivity-service.enabled", "network.prefetch-next",
    "nimbus.telemetry.targetingContextEnabled", "toolkit.telemetry.enabled",
    "toolkit.telemetry.unified",
)
OFFLINE_PREFS: dict[str, bool | int | str] = {
    **dict.fromkeys(_OFF, False),
    "app.update.disabledForTesting": True,
    "browser.region.network.url": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.search.geoip.url": "",
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "geo.provider.network.url": "",
    "media.gmp-manager.url": "",
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    # anything not on loopback goes to a closed local port (loopback is never proxied)
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.share_proxy_settings": True,
    "services.settings.server": "http://127.0.0.1:9/",
    "toolkit.telemetry.server": "",
}


class BiDiError(RuntimeError):
    """A command the browser answered with an error (its error code and message)."""


class Firefox:
    """One headless Firefox and one BiDi session on its first tab.

    Use as a context manager; ``errors`` collects uncaught JavaScript errors of the pages
    (tests check it is empty after each page), ``console_errors`` any ``console.error``.
    """

    def __init__(self, executable: str = FIREFOX, timeout: float = TIMEOUT) -> None:
        self.executable = executable
        self.timeout = timeout
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.events: list[dict[str, Any]] = []  # every other event, in arrival order
        self._ids = itertools.count(1)
        self._profile = tempfile.mkdtemp(prefix="bluebroker-firefox-")
        self._proc: subprocess.Popen[str] | None = None
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()  # the websocket connection, closed in close()
        self._drain: threading.Thread | None = None
        self.context = ""

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> Firefox:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        with open(os.path.join(self._profile, "user.js"), "w") as f:
            for name, value in OFFLINE_PREFS.items():
                f.write(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n")
        env = dict(os.environ, MOZ_CRASHREPORTER_DISABLE="1")
        self._proc = subprocess.Popen(
            [self.executable, "--headless", "--remote-debugging-port=0",
             "--profile", self._profile, "--no-remote"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def drain(stream: Any) -> None:  # keeps reading so the pipe never fills
            for line in stream:
                lines.put(line)
            lines.put(None)

        self._drain = threading.Thread(target=drain, args=(self._proc.stderr,), daemon=True)
        self._drain.start()
        seen: list[str] = []
        while True:  # readiness: the line Firefox prints once its BiDi server listens
            try:
                line = lines.get(timeout=self.timeout)
            except queue.Empty:
                raise RuntimeError(f"Firefox did not start its BiDi server: {seen}") from None
            if line is None:
                raise RuntimeError(f"Firefox exited before listening: {''.join(seen)}")
            seen.append(line)
            found = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if found:
                break
        self._ws = self._stack.enter_context(
            connect(f"{found.group(1)}/session", max_size=None, open_timeout=self.timeout))
        self.send("session.new", capabilities={"alwaysMatch": {"acceptInsecureCerts": False}})
        self.send("session.subscribe", events=["log.entryAdded"])
        tree = self.send("browsingContext.getTree", maxDepth=0)
        self.context = tree["contexts"][0]["context"]

    def close(self) -> None:
        """End the session, stop the browser and remove its profile (safe to call twice)."""
        if self._ws is not None:
            with contextlib.suppress(Exception):  # the browser may be gone; it is stopped below
                self.send("session.end")
            self._stack.close()
            self._ws = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._drain is not None:  # it ends at the pipe's end, once Firefox is gone
                self._drain.join(self.timeout)
            if self._proc.stderr is not None and not (self._drain and self._drain.is_alive()):
                self._proc.stderr.close()
            self._proc = None
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol ---------------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        assert self._ws is not None, "the browser is not running"
        command_id = next(self._ids)
        self._ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout * 2
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("type") == "event":
                self._on_event(message)
            elif message.get("id") == command_id:
                if message["type"] == "error":
                    raise BiDiError(f"{method}: {message['error']}: {message.get('message')}")
                return message["result"]

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        """The params of the next event named ``method`` (one already received counts)."""
        assert self._ws is not None, "the browser is not running"
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(i)["params"]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} event within the time allowed")
            try:
                message = json.loads(self._ws.recv(timeout=left))
            except TimeoutError:
                continue
            if message.get("type") == "event":
                self._on_event(message)

    def _on_event(self, message: dict[str, Any]) -> None:
        if message["method"] == "log.entryAdded":
            entry = message["params"]
            frames = (entry.get("stackTrace") or {}).get("callFrames") or [{}]
            where = f"{frames[0].get('url', '?')}:{frames[0].get('lineNumber', '?')}"
            text = f"{entry.get('text')} (at {where})"
            if entry.get("type") == "javascript" and entry.get("level") == "error":
                self.errors.append(text)
            elif entry.get("level") == "error":
                self.console_errors.append(text)
            return
        self.events.append(message)

    # -- helpers ----------------------------------------------------------------------------
    def navigate(self, url: str) -> str:
        """Open ``url`` and wait until its document has loaded; returns the final URL."""
        result = self.send("browsingContext.navigate", context=self.context, url=url,
                           wait="complete")
        return result["url"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("script.evaluate", expression=expression, awaitPromise=True,
                           target={"context": self.context}, resultOwnership="none")
        if result["type"] == "exception":
            details = result["exceptionDetails"]
            raise BiDiError(f"{expression!r} threw: {details.get('text')}")
        return _plain(result["result"])

    def wait_for(self, predicate: str, timeout: float | None = None) -> Any:
        """Wait until the JavaScript expression ``predicate`` is truthy; returns its value.

        The polling runs inside the page (one round trip); if the page changes document
        meanwhile, the wait starts again in the new one."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        poll = (
            "new Promise(resolve => { const t0 = performance.now();"
            " const tick = () => { let v = null; try { v = (" + predicate + "); } catch (e) {}"
            f" if (v || performance.now() - t0 > {limit * 1000:.0f}) resolve(v || null);"
            " else setTimeout(tick, 25); }; tick(); })"
        )
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(poll)
            except BiDiError as err:  # the document went away mid-wait: ask the new one
                last = str(err)
                continue
            if last:
                return last
        raise TimeoutError(f"not true within {limit} s: {predicate} (last: {last!r})")

    def wait_text(self, selector: str, pattern: str, timeout: float | None = None) -> str:
        """Wait until the element ``selector`` exists and its text matches regex ``pattern``."""
        return self.wait_for(
            f"(e => e && new RegExp({json.dumps(pattern)}).test(e.textContent) &&"
            f" e.textContent)(document.querySelector({json.dumps(selector)}))", timeout)

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the first element matching ``selector``."""
        x, y = self.wait_for(
            f"(e => {{ if (!e) return null; e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); if (!r.width || !r.height) return null;"
            " return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)]; })"
            f"(document.querySelector({json.dumps(selector)}))")
        actions = [{"type": "pointerMove", "x": x, "y": y, "origin": "viewport"},
                   {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]
        self.send("input.performActions", context=self.context, actions=[
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
             "actions": actions}])

    def press(self, key: str) -> None:
        """Press and release one key (a character, or a WebDriver key code such as
        ``"\\uE014"`` for ArrowRight) in the focused element."""
        self.send("input.performActions", context=self.context, actions=[
            {"type": "key", "id": "keyboard",
             "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}])

    def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element, key by key."""
        for char in text:
            self.press(char)

    def download(self, selector: str, folder: str) -> str:
        """Click the link ``selector`` and wait until the browser has saved what it points
        to in ``folder``; returns the saved file's path."""
        self.send("browser.setDownloadBehavior",
                  downloadBehavior={"type": "allowed", "destinationFolder": folder})
        self.send("session.subscribe", events=["browsingContext.downloadEnd"])
        self.click(selector)
        end = self.wait_event("browsingContext.downloadEnd")
        assert end["status"] == "complete", end
        return end["filepath"]

    def set_viewport(self, width: int, height: int) -> None:
        self.send("browsingContext.setViewport", context=self.context,
                  viewport={"width": width, "height": height})

    def screenshot(self, path: str | None = None) -> bytes:
        """A PNG of the viewport (also written to ``path`` when given)."""
        data = base64.b64decode(
            self.send("browsingContext.captureScreenshot", context=self.context)["data"])
        if path is not None:
            with open(path, "wb") as f:
                f.write(data)
        return data


ARROW_RIGHT = "\ue014"
ENTER = "\ue007"


def _plain(value: dict[str, Any]) -> Any:
    """A BiDi remote value as plain Python (strings, numbers, lists, dicts, None)."""
    kind = value["type"]
    if kind in ("undefined", "null"):
        return None
    if kind in ("string", "boolean"):
        return value["value"]
    if kind == "number":
        number = value["value"]
        return number if isinstance(number, (int, float)) else float(number)
    if kind == "array":
        return [_plain(v) for v in value.get("value", [])]
    if kind == "object":
        return {k if isinstance(k, str) else _plain(k): _plain(v)
                for k, v in value.get("value", [])}
    return value  # nodes, functions...: the raw description
