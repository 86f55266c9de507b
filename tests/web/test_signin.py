"""Signing in and out of the web page through a real OpenID provider (oidc-provider-mock, as
in tests/server/test_oidc.py), in real Chromium: the browser code flow, back to the view the
person was on, the name shown, and Sign out (a POST with the CSRF header) ending it."""

from __future__ import annotations

from playwright.sync_api import expect

from bluebroker.server.api_keys import ApiKeyStore
from bluebroker.server.auth import AuthSettings
from bluebroker.server.oidc import OIDC
from tests.server.test_oidc import ALICE, _config, provider  # noqa: F401 (a fixture)
from tests.web.conftest import serve_for_web


def test_sign_in_and_out_through_the_provider(browser, catalog, beamline, provider):  # noqa: F811
    oidc = OIDC.from_engine(_config(provider), catalog.engine)
    auth = AuthSettings(token="another-token", keys=ApiKeyStore(catalog.engine), oidc=oidc)
    with serve_for_web(catalog, auth=auth, api_key=None) as url:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{url}/browse/bmm/raw?sort=scan_id")
            expect(page.get_by_test_id("error")).to_contain_text("HTTP 401")
            page.get_by_test_id("signin").click()
            expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
            page.get_by_role("button", name=ALICE["sub"]).click()  # the person picks Alice
            # back where the person was, signed in by the session cookie
            expect(page).to_have_url(f"{url}/browse/bmm/raw?sort=scan_id")
            expect(page.get_by_test_id("run-row")).to_have_count(4)
            expect(page.get_by_test_id("whoami")).to_have_text("alice")
            assert len(oidc.store.list()) == 1
            expect(page.get_by_test_id("signin")).to_have_count(0)
            page.get_by_test_id("signout").click()
            expect(page.get_by_test_id("signin")).to_be_visible()
            expect(page.get_by_test_id("error")).to_contain_text("HTTP 401")
            assert oidc.store.list() == []  # the session is revoked, not just forgotten
        finally:
            context.close()
