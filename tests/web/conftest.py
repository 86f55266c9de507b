"""Fixtures for the web page's end-to-end tests: real Chromium (Debian's, driven by
Playwright's Python package) against a real server holding real RunEngine runs.

- ``browser``: one headless Chromium per test session (per xdist worker);
- ``web_url`` and ``beamline``: a live server with the ``beamline`` runs (SQLite), key
  ``TEST_KEY``. A test that only reads shares one such server per session (per xdist worker):
  building the runs and starting a server was most of this suite's time. A test that also
  asks for ``catalog``, ``RE`` or ``tmp_path`` (it writes runs, mounts, deletes detector
  files) gets its own fresh catalog and server, as before;
- ``page`` (1280x800) and ``phone_page`` (390x844): a fresh browser context each, already
  signed in by opening ``<url>/?token=<TEST_KEY>`` as a person opens the printed URL;
- ``live_web(catalog)``: a context manager serving any catalog (for tests that run a
  RunEngine into it while the page watches), yielding the base URL.

Uncaught JavaScript errors on a page fail the test that made them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import CI, TEST_KEY, record_beamline

CHROMIUM = os.environ.get("BLUEBROKER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000  # generous: the suite runs two workers on a loaded machine
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


try:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
except ImportError:  # the browser fixture says what is missing
    pass


def _missing(reason: str) -> None:
    if CI:
        pytest.fail(f"CI=true but {reason} (scripts/test installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium for the whole session: starting it is the slow part."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium is not at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def catalog_uri(tmp_path):
    """The page only speaks HTTP: one backend (SQLite) is enough for these tests."""
    return f"sqlite:///{tmp_path}/catalog.db"


@contextmanager
def serve_for_web(catalog, **kwargs) -> Iterator[str]:
    """``catalog`` served on a free port with the tests' key; yields the base URL."""
    from bluebroker.server.run import background_server

    kwargs.setdefault("api_key", TEST_KEY)
    with background_server(catalog, **kwargs) as url:
        yield url


@pytest.fixture
def live_web():
    """``with live_web(catalog) as url:`` serves ``catalog`` while the test runs a RunEngine."""
    return serve_for_web


# A test asking for one of these may change the catalog or its files: it gets its own server.
CHANGES_WHAT_IS_SERVED = ("catalog", "RE", "tmp_path")


def _own_server(request) -> bool:
    return any(name in request.node.fixturenames for name in CHANGES_WHAT_IS_SERVED)


@pytest.fixture(scope="session")
def shared_beamline(tmp_path_factory) -> Iterator[tuple[str, dict]]:
    """(url, runs): the beamline runs in a catalog of their own, served once per session for
    the tests that only read (nothing else writes into this catalog or its folder)."""
    from bluesky import RunEngine

    from bluebroker.catalog import open_catalog

    root = tmp_path_factory.mktemp("shared-beamline")
    catalog = open_catalog(f"sqlite:///{root}/catalog.db", create=True, data_roots=[root])
    loop = asyncio.new_event_loop()
    engine = RunEngine({}, loop=loop, context_managers=[])
    try:
        runs = record_beamline(engine, catalog, root)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        engine._th.join()
        loop.close()
    try:
        with serve_for_web(catalog) as url:
            yield url, runs
    finally:
        catalog.close()


@pytest.fixture
def beamline(request) -> dict:
    """The documents of the served runs by uid (see the module's docstring for which)."""
    if _own_server(request):
        return record_beamline(*(request.getfixturevalue(n) for n in ("RE", "catalog", "tmp_path")))
    return request.getfixturevalue("shared_beamline")[1]


@pytest.fixture
def web_url(request, beamline) -> Iterator[str]:
    if _own_server(request):
        with serve_for_web(request.getfixturevalue("catalog")) as url:
            yield url
    else:
        yield request.getfixturevalue("shared_beamline")[0]


def open_page(browser, url: str, viewport: dict):
    """A new context and page signed in through the printed-URL flow (token -> cookie)."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []  # uncaught errors, checked when the test ends
    page.on("pageerror", lambda err: page.js_errors.append(str(err)))
    landed = page.goto(f"{url}/?token={TEST_KEY}")
    assert landed is not None and landed.ok, landed and landed.status
    assert page.url.rstrip("/") == url, "the token should leave the address bar"
    return context, page


@contextmanager
def _page(browser, url: str, viewport: dict):
    context, page = open_page(browser, url, viewport)
    try:
        yield page
    finally:
        errors = list(page.js_errors)
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


@pytest.fixture
def page(browser, web_url):
    with _page(browser, web_url, DESKTOP) as p:
        yield p


@pytest.fixture
def phone_page(browser, web_url):
    with _page(browser, web_url, PHONE) as p:
        yield p
