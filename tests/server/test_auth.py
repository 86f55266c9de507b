"""Sign-in on a real server: the single-user token (URL, cookie, header), API keys with scopes,
expiry and revocation, anonymous reads with --public, security headers, CORS and the
brute-force limit."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa

from bluebroker.server.api_keys import ApiKeyStore
from bluebroker.server.auth import TOKEN_COOKIE, AuthSettings
from bluebroker.server.run import background_server
from tests.ingest.kafka_workers import wait

TOKEN = "single-user-token-for-tests"


def _serve(catalog, **settings):
    auth = AuthSettings(keys=ApiKeyStore(catalog.engine), **settings)
    return background_server(catalog, auth=auth)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def uid(beamline):
    return next(iter(beamline))


def test_the_token_opens_everything_once_the_browser_has_it(catalog, uid, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    from bluebroker.client import from_uri

    with _serve(catalog, token=TOKEN) as url:
        denied = httpx.get(f"{url}/api/v1/search/bmm/raw")
        assert denied.status_code == 401
        detail = denied.json()["detail"]
        assert f"{url}/?token=" in detail and "from_uri(url, api_key=" in detail
        assert TOKEN not in detail
        assert "Bearer" in denied.headers["www-authenticate"]
        # the printed URL: the browser is given the token as an HttpOnly cookie ...
        with httpx.Client() as browser:
            first = browser.get(f"{url}/api/v1/metadata/bmm/raw", params={"token": TOKEN})
            assert first.status_code == 200
            cookie = first.headers["set-cookie"]
            assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN};")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Secure" not in cookie  # plain http on loopback
            # ... and sends it from then on, with no token in the URL
            assert browser.get(f"{url}/api/v1/search/bmm/raw").json()["meta"]["count"] == 4
        # headers and the Python client, which takes the token from the printed URL
        for scheme in ("Bearer", "Apikey"):
            got = httpx.get(
                f"{url}/api/v1/search/bmm/raw", headers={"Authorization": f"{scheme} {TOKEN}"}
            )
            assert got.status_code == 200
        assert len(from_uri(f"{url}/?token={TOKEN}")["bmm"]["raw"]) == 4
        assert (
            httpx.get(f"{url}/api/v1/search/bmm/raw", params={"token": "nope"}).status_code == 401
        )
        # a wrong token is refused even with the right cookie beside it: no silent fallback
        wrong = httpx.get(
            f"{url}/api/v1/search/bmm/raw", headers=_bearer("nope"), cookies={TOKEN_COOKIE: TOKEN}
        )
        assert wrong.status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200  # liveness stays open


def test_api_keys_carry_scopes_expire_and_are_revoked(catalog, uid, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    owner = _bearer(TOKEN)
    with _serve(catalog, token=TOKEN) as url:
        api = f"{url}/api/v1"
        made = httpx.post(
            f"{api}/auth/apikey",
            json={"scopes": ["read:metadata"], "note": "dashboard"},
            headers=owner,
        )
        assert made.status_code == 200, made.text
        secret = made.json()["secret"]
        assert secret.startswith("bb_") and made.json()["scopes"] == ["read:metadata"]
        key = _bearer(secret)
        assert httpx.get(f"{api}/search/bmm/raw", headers=key).json()["meta"]["count"] == 4
        data = httpx.get(f"{api}/table/full/bmm/raw/{uid}/primary/data", headers=key)
        assert data.status_code == 403 and "read:data" in data.json()["detail"]
        # the slice route (a plain Starlette route in front of FastAPI's) checks the same
        field = f"{api}/array/full/bmm/raw/{uid}/primary/data/time"
        sliced = httpx.get(field, params={"slice": "0:2"}, headers=key)
        assert sliced.status_code == 403 and "read:data" in sliced.json()["detail"]
        assert httpx.get(field, params={"slice": "0:2"}).status_code == 401
        assert httpx.get(field, params={"slice": "0:2"}, headers=owner).status_code == 200
        docs = httpx.get(f"{api}/documents/bmm/raw/{uid}", headers=key)
        assert docs.status_code == 403
        post = httpx.post(f"{api}/documents/bmm/raw", content=b"[]", headers=key)
        assert post.status_code == 403 and "write:data" in post.json()["detail"]
        who = httpx.get(f"{api}/auth/whoami", headers=key).json()
        assert (
            who["id"] == "owner" and who["scopes"] == ["read:metadata"] and who["via"] == "api-key"
        )
        # a key cannot make a key wider than itself
        wider = httpx.post(f"{api}/auth/apikey", json={"scopes": ["read:data"]}, headers=key)
        assert wider.status_code == 403 and "read:data" in wider.json()["detail"]
        bad = httpx.post(f"{api}/auth/apikey", json={"scopes": ["read:everything"]}, headers=owner)
        assert bad.status_code == 400 and "read:metadata" in bad.json()["detail"]
        # listed by its first eight characters, never by its secret
        listed = httpx.get(f"{api}/auth/apikey", headers=owner).json()["keys"]
        assert [k["first_eight"] for k in listed] == [secret[3:11]]
        assert secret not in json.dumps(listed)
        gone = httpx.delete(
            f"{api}/auth/apikey", params={"first_eight": secret[3:11]}, headers=owner
        )
        assert gone.json() == {"revoked": 1}
        assert httpx.get(f"{api}/search/bmm/raw", headers=key).status_code == 401
        # expiry: a key made to live a moment stops working without anyone revoking it
        brief = httpx.post(f"{api}/auth/apikey", json={"expires_in": 0.5}, headers=owner).json()
        wait(
            lambda: (
                httpx.get(f"{api}/search/bmm/raw", headers=_bearer(brief["secret"])).status_code
                == 401
            ),
            timeout=30,
            what="the key to expire",
        )
    # the database holds hashes, not keys
    with catalog.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM bluebroker_api_keys")).all()
    assert len(stored) == 2 and secret not in repr(stored) and brief["secret"] not in repr(stored)


def test_public_reads_need_no_key_but_writes_do(catalog, uid, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    with _serve(catalog, token=TOKEN, public=True) as url:
        api = f"{url}/api/v1"
        assert httpx.get(f"{api}/search/bmm/raw").json()["meta"]["count"] == 4
        assert httpx.get(f"{api}/table/full/bmm/raw/{uid}/primary/data").status_code == 200
        post = httpx.post(f"{api}/documents/bmm/raw", content=b"[]")
        assert post.status_code == 403 and "write:data" in post.json()["detail"]
        assert httpx.post(
            f"{api}/documents/bmm/raw", content=b"[]", headers=_bearer(TOKEN)
        ).is_success
        assert httpx.get(f"{api}/search/bmm/raw", headers=_bearer("typo")).status_code == 401
        assert httpx.post(f"{api}/auth/apikey", json={}).status_code == 401  # anonymous: no keys


def test_guessing_keys_is_slowed_to_a_crawl(catalog, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    with _serve(catalog, token=TOKEN) as url, httpx.Client() as client:
        statuses = [
            client.get(f"{url}/api/v1/metadata/", headers=_bearer(f"guess{i}")).status_code
            for i in range(25)
        ]
        assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
        limited = client.get(f"{url}/api/v1/metadata/", headers=_bearer("guess"))
        assert int(limited.headers["retry-after"]) > 0 and "try again" in limited.json()["detail"]


def test_security_headers_and_cors(catalog, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    with _serve(catalog, token=TOKEN, cors_origins=("https://beamline.example.org",)) as url:
        api = httpx.get(f"{url}/api/v1/metadata/", headers=_bearer(TOKEN))
        assert api.headers["x-content-type-options"] == "nosniff"
        assert api.headers["referrer-policy"] == "no-referrer"
        assert api.headers["x-frame-options"] == "DENY"
        docs = httpx.get(f"{url}/docs")
        csp = docs.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "access-control-allow-origin" not in api.headers
        allowed = httpx.options(
            f"{url}/api/v1/metadata/",
            headers={
                "Origin": "https://beamline.example.org",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == "https://beamline.example.org"
        other = httpx.get(
            f"{url}/api/v1/metadata/", headers={"Origin": "https://evil.example", **_bearer(TOKEN)}
        )
        assert "access-control-allow-origin" not in other.headers
