"""How the page itself is served (plain HTTP, no browser): every /browse path gets the page,
static files with their media types and caching, nothing outside web/, a strict CSP."""

from __future__ import annotations

import re

import httpx

from bluebroker.server.routes.web import asset_version
from tests.conftest import TEST_KEY
from tests.web.conftest import serve_for_web


def test_the_page_and_its_files(catalog):
    with serve_for_web(catalog) as url, httpx.Client(base_url=url) as http:
        for path in ("/", "/browse/", "/browse/bmm/raw/not-a-run/primary?tab=detail"):
            page = http.get(path)  # a path not in the tree still gets the page (it says 404)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        version = asset_version()
        assert f"/static/v-{version}/app.js" in page.text
        assert f'rel="modulepreload" href="/static/v-{version}/views/array.js"' in page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline scripts
        assert not re.search(r"\son[a-z]+=", page.text)  # and no inline event handlers
        # the page's own URLs carry the version in the path, so that relative imports do too:
        # cached as immutable, a repeat visit asks the network for nothing
        for pinned in (
            f"/static/v-{version}/app.js",
            f"/static/v-{version}/pages/runs.js",
            f"/static/app.js?v={version}",
        ):
            got = http.get(pinned)
            assert got.status_code == 200, pinned
            assert got.headers["content-type"].startswith("text/javascript")
            assert got.headers["cache-control"] == "public, max-age=86400, immutable", pinned
        # an older page's URL (or one with no version) gets today's file, revalidated by ETag
        for plain in ("/static/pages/runs.js", "/static/v-0.0.1-0badf00d/pages/runs.js"):
            got = http.get(plain)
            assert got.status_code == 200 and got.headers["cache-control"] == "no-cache", plain
            assert got.content == http.get(f"/static/v-{version}/pages/runs.js").content
            again = http.get(plain, headers={"If-None-Match": got.headers["etag"]})
            assert again.status_code == 304 and not again.content
        assert http.get("/static/style.css").headers["content-type"].startswith("text/css")
        for outside in (
            "/static/../server/app.py",
            "/static/%2e%2e/%2e%2e/etc/passwd",
            "/static/__init__.py",
            "/static/nothing.js",
            f"/static/v-{version}/%2e%2e/%2e%2e/server/app.py",
            f"/static/v-{version}/",
        ):
            refused = http.get(outside)
            assert refused.status_code == 404, outside
            assert "import" not in refused.text


def test_the_token_url_becomes_a_cookie_and_leaves_the_address_bar(catalog):
    with serve_for_web(catalog) as url, httpx.Client(base_url=url) as browser:
        landed = browser.get(f"/browse/bmm/raw?sort=scan_id&token={TEST_KEY}")
        assert landed.status_code == 303
        assert landed.headers["location"] == "/browse/bmm/raw?sort=scan_id"
        assert "HttpOnly" in landed.headers["set-cookie"]
        assert browser.get("/api/v1/auth/whoami").json()["kind"] == "owner"
        again = browser.get(f"/?token={TEST_KEY}")  # the printed URL opened again
        assert again.status_code == 303 and again.headers["location"] == "/"
        wrong = httpx.get(f"{url}/?token=not-the-token")  # the page shows the API's 401 itself
        assert wrong.status_code == 200 and "set-cookie" not in wrong.headers
