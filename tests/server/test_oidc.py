"""Sign-in with OpenID Connect against a real OpenID provider process (oidc-provider-mock on
a loopback port): the browser's code flow followed by a real HTTP client, the session cookie
and its CSRF token, bluebroker's own access tokens (forged, expired, alg=none), refresh with
rotation, logout, the device-code flow of the Python client, and the hostile cases of the
flow itself (state, replayed codes, open redirects)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import OctKey

from bluebroker.server.api_keys import ApiKeyStore
from bluebroker.server.auth import AuthSettings
from bluebroker.server.oidc import CSRF_COOKIE, OIDC, SESSION_COOKIE, OIDCConfig
from bluebroker.server.run import background_server
from tests.ingest.kafka_workers import wait
from tests.processes import Running, free_port, run, wait_until_answering

TOKEN = "single-user-token-for-oidc-tests"
ALICE = {"sub": "alice-0001", "preferred_username": "alice", "groups": ["bmm-staff", "p-101"]}
BOB = {"sub": "bob-0002", "preferred_username": "bob", "groups": ["p-202"]}
CAROL = {"sub": "carol-0003", "preferred_username": "carol", "groups": ["pass-1"]}
DAVE = {"sub": "dave-0004", "preferred_username": "dave", "groups": "pass-2 pass-7"}
SECRET = "a-test-signing-secret-of-at-least-32-characters"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The OpenID provider, as its own process; ready when it serves its discovery document."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
    for user in (ALICE, BOB, CAROL, DAVE):
        args += ["--user-claims", json.dumps(user)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, f"the provider exited: {log.read_text()[-2000:]}"
        try:
            return httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200
        except httpx.TransportError:
            return False

    wait(ready, timeout=60, what="the OpenID provider's discovery document")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _config(provider: str, **changes) -> OIDCConfig:
    settings = {
        "issuer": provider,
        "client_id": "bluebroker-tests",
        "client_secret": "client-secret",
        "provider": "testidp",
        "admins": ["bob"],
        "secret": SECRET,
        "device_poll_interval": 0.05,
        **changes,
    }
    return OIDCConfig.from_dict(settings)


def _serve(catalog, provider, **changes):
    oidc = OIDC.from_engine(_config(provider, **changes), catalog.engine)
    auth = AuthSettings(token=TOKEN, keys=ApiKeyStore(catalog.engine), oidc=oidc)
    return background_server(catalog, auth=auth)


def _sign_in(url: str, user: dict, next_path: str = "/api/v1/auth/whoami"):
    """A browser: follows redirects to the provider's page, picks the user there (a form post,
    as a person clicks), and follows the redirects back. Returns it and the last response."""
    browser = httpx.Client(follow_redirects=True)
    form = browser.get(f"{url}/api/v1/auth/login", params={"next": next_path})
    assert form.status_code == 200 and "Authorize" in form.text, form.text
    assert str(form.url).startswith(url) is False  # at the provider now
    done = browser.post(str(form.url), data={"sub": user["sub"]})
    return browser, done


@pytest.fixture
def uid(beamline):
    return next(iter(beamline))


def test_browser_code_flow_gives_a_session_cookie_with_csrf(catalog, provider, uid, monkeypatch):
    monkeypatch.delenv("BLUEBROKER_API_KEY")
    with _serve(catalog, provider) as url:
        api = f"{url}/api/v1"
        # what a browser that is not signed in is told
        assert "/api/v1/auth/login" in httpx.get(f"{api}/search/bmm/raw").json()["detail"]
        browser, me = _sign_in(url, ALICE)
        assert me.status_code == 200, me.text
        assert str(me.url) == f"{api}/auth/whoami"  # back where `next` said
        who = me.json()
        assert who["id"] == "user:testidp:alice-0001" and who["name"] == "alice"
        assert who["groups"] == ["bmm-staff", "p-101"] and who["via"] == "session"
        assert who["scopes"] == ["read:data", "read:metadata", "write:data"]  # not an admin
        # the cookies: HttpOnly, SameSite=Lax, not Secure over plain http; the login cookie
        # that bound the flow to this browser is gone
        callback = next(r for r in me.history if r.url.path == "/api/v1/auth/callback")
        cookies = callback.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Secure" not in session
        csrf = next(c for c in cookies if c.startswith(CSRF_COOKIE + "="))
        assert "HttpOnly" not in csrf
        assert any(c.startswith("bluebroker_login=") and "Max-Age=0" in c for c in cookies)
        # the session reads data
        assert browser.get(f"{api}/search/bmm/raw").json()["meta"]["count"] == 4
        assert browser.get(f"{api}/table/full/bmm/raw/{uid}/primary/data").status_code == 200
        # a state-changing request by cookie needs the CSRF token the page echoes
        refused = browser.post(f"{api}/documents/bmm/raw", content=b"[]")
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        wrong = browser.post(
            f"{api}/documents/bmm/raw", content=b"[]", headers={"X-CSRF-Token": "0" * 64}
        )
        assert wrong.status_code == 403
        token = browser.cookies[CSRF_COOKIE]
        posted = browser.post(
            f"{api}/documents/bmm/raw", content=b"[]", headers={"X-CSRF-Token": token}
        )
        assert posted.status_code == 200, posted.text
        # logout by cookie is state-changing too; then the cookie opens nothing
        stolen = browser.cookies[SESSION_COOKIE]
        assert browser.post(f"{api}/auth/logout").status_code == 403
        out = browser.post(f"{api}/auth/logout", headers={"X-CSRF-Token": token})
        assert out.status_code == 200 and out.json() == {"revoked": 1}
        again = httpx.get(f"{api}/search/bmm/raw", cookies={SESSION_COOKIE: stolen})
        assert again.status_code == 401
    assert stolen not in _stored(catalog)  # the database holds hashes only


def _stored(catalog) -> str:
    """Everything the sign-in tables hold, as text."""
    tables = ("bluebroker_sessions", "bluebroker_logins", "bluebroker_device_codes")
    with catalog.engine.connect() as conn:
        return repr([conn.execute(sa.text(f"SELECT * FROM {t}")).all() for t in tables])


def test_two_users_get_their_own_principal_and_admins_come_from_the_config(catalog, provider):
    with _serve(catalog, provider) as url:
        _, alice = _sign_in(url, ALICE)
        _, bob = _sign_in(url, BOB)
        assert alice.json()["groups"] == ["bmm-staff", "p-101"]
        assert bob.json()["id"] == "user:testidp:bob-0002"
        assert bob.json()["groups"] == ["p-202"]
        assert "admin" in bob.json()["scopes"] and "admin" not in alice.json()["scopes"]


def test_the_flow_refuses_forged_state_replayed_codes_and_open_redirects(catalog, provider):
    with _serve(catalog, provider) as url:
        api = f"{url}/api/v1"
        # next may only be a path on this server
        for bad in (
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "api/v1",
            "/%0d%0aSet-Cookie:x=1".replace("%0d%0a", "\r\n"),
        ):
            got = httpx.get(f"{api}/auth/login", params={"next": bad})
            assert got.status_code == 400 and "path on this server" in got.json()["detail"], bad
        # a callback with a state this server never made
        browser = httpx.Client(follow_redirects=False)
        start = browser.get(f"{api}/auth/login", params={"next": "/api/v1/"})
        assert start.status_code == 302
        form_url = start.headers["location"]
        assert "code_challenge_method=S256" in form_url and "nonce=" in form_url
        back = browser.post(form_url, data={"sub": ALICE["sub"]})
        callback = back.headers["location"]
        assert callback.startswith(f"{api}/auth/callback?")
        forged = callback.replace("state=", "state=x")
        assert browser.get(forged).status_code == 400
        # the same callback in another browser (an attacker's login pushed on a victim)
        other = httpx.get(callback)
        assert other.status_code == 400 and "another browser" in other.json()["detail"]
        # the real one works once ...
        done = browser.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/api/v1/"
        # ... and a replay of the same code and state is refused
        replay = browser.get(callback)
        assert replay.status_code == 400 and "already" in replay.json()["detail"]
        # the provider saying no
        denied = browser.get(f"{api}/auth/callback", params={"error": "access_denied"})
        assert denied.status_code == 400 and "access_denied" in denied.json()["detail"]


def _approve(browser: httpx.Client, page: httpx.Response, user: dict) -> httpx.Response:
    """On the device page: follow its sign-in link (a link, as a person clicks it), pick the
    user at the provider, and come back."""
    link = re.search(r"id='sign-in' href='([^']+)'", page.text).group(1)
    form = browser.get(page.url.join(html.unescape(link)))
    return browser.post(str(form.url), data={"sub": user["sub"]})


def _device_tokens(url: str, user: dict) -> dict:
    """The device-code flow as a client runs it, with a person signing in in a browser."""
    api = f"{url}/api/v1"
    start = httpx.post(f"{api}/auth/device_code").json()
    assert start["verification_uri"] == f"{api}/auth/device"
    pending = httpx.post(
        f"{api}/auth/device_code/token", json={"device_code": start["device_code"]}
    )
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    browser = httpx.Client(follow_redirects=True)
    page = browser.get(start["verification_uri_complete"])
    assert start["user_code"] in page.text
    # a person who types the code in the page's form gets the same page, with the link
    typed = browser.get(start["verification_uri"], params={"user_code": start["user_code"].lower()})
    assert typed.text == page.text
    done = _approve(browser, page, user)
    assert done.status_code == 200 and "Signed in" in done.text
    assert SESSION_COOKIE not in browser.cookies  # the tokens are the client's, not the page's

    def poll():
        got = httpx.post(
            f"{api}/auth/device_code/token", json={"device_code": start["device_code"]}
        )
        return got.json() if got.status_code == 200 else None

    tokens = None

    def collected():
        nonlocal tokens
        tokens = poll()
        return tokens is not None

    wait(collected, timeout=30, what="the device's tokens")
    # collected once: the device code is spent
    assert poll() is None
    return tokens


def test_device_code_gives_access_and_refresh_tokens_that_rotate(catalog, provider, uid):
    with _serve(catalog, provider) as url:
        api = f"{url}/api/v1"
        tokens = _device_tokens(url, ALICE)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        who = httpx.get(f"{api}/auth/whoami", headers=bearer).json()
        assert who["id"] == "user:testidp:alice-0001" and who["via"] == "bearer"
        assert httpx.get(f"{api}/search/bmm/raw", headers=bearer).json()["meta"]["count"] == 4
        # refresh: a new access token and a new refresh token; the old one is spent
        first = tokens["refresh_token"]
        new = httpx.post(f"{api}/auth/session/refresh", json={"refresh_token": first})
        assert new.status_code == 200 and new.json()["refresh_token"] != first
        fresh = new.json()
        assert (
            httpx.get(
                f"{api}/auth/whoami", headers={"Authorization": f"Bearer {fresh['access_token']}"}
            ).status_code
            == 200
        )
        # presenting the spent refresh token again means it was copied: the session ends
        reuse = httpx.post(f"{api}/auth/session/refresh", json={"refresh_token": first})
        assert reuse.status_code == 401
        assert (
            httpx.post(
                f"{api}/auth/session/refresh", json={"refresh_token": fresh["refresh_token"]}
            ).status_code
            == 401
        )
        assert (
            httpx.get(
                f"{api}/auth/whoami", headers={"Authorization": f"Bearer {fresh['access_token']}"}
            ).status_code
            == 401
        )
    stored = _stored(catalog)
    assert tokens["refresh_token"] not in stored and fresh["refresh_token"] not in stored


def test_access_tokens_expire_and_logout_revokes_them(catalog, provider):
    with _serve(catalog, provider, access_token_lifetime=2) as url:
        api = f"{url}/api/v1"
        tokens = _device_tokens(url, BOB)
        assert tokens["expires_in"] == 2
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert httpx.get(f"{api}/auth/whoami", headers=bearer).status_code == 200
        wait(
            lambda: httpx.get(f"{api}/auth/whoami", headers=bearer).status_code == 401,
            timeout=30,
            what="the access token to expire",
        )
        fresh = httpx.post(
            f"{api}/auth/session/refresh", json={"refresh_token": tokens["refresh_token"]}
        ).json()
        bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert httpx.get(f"{api}/auth/whoami", headers=bearer).status_code == 200
        assert httpx.post(f"{api}/auth/logout", headers=bearer).json() == {"revoked": 1}
        assert httpx.get(f"{api}/auth/whoami", headers=bearer).status_code == 401
        assert (
            httpx.post(
                f"{api}/auth/session/refresh", json={"refresh_token": fresh["refresh_token"]}
            ).status_code
            == 401
        )


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_expired_and_unsigned_tokens_are_refused(catalog, provider):
    with _serve(catalog, provider) as url:
        api = f"{url}/api/v1"
        tokens = _device_tokens(url, ALICE)
        claims = jwt.decode(tokens["access_token"], OctKey.import_key(SECRET)).claims
        now = int(time.time())

        def refused(token: str) -> bool:
            got = httpx.get(f"{api}/auth/whoami", headers={"Authorization": f"Bearer {token}"})
            return got.status_code == 401

        other_key = OctKey.import_key("another-secret-that-is-also-long-enough!!")
        admin = {**claims, "sub": "user:testidp:bob-0002"}
        cases = {
            "signed with another key": jwt.encode({"alg": "HS256"}, claims, other_key),
            "expired": jwt.encode(
                {"alg": "HS256"}, {**claims, "exp": now - 5}, OctKey.import_key(SECRET)
            ),
            "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(admin)}.",
            "claims swapped under a valid signature": ".".join(
                [
                    tokens["access_token"].split(".")[0],
                    _b64(admin),
                    tokens["access_token"].split(".")[2],
                ]
            ),
            "another user in a genuinely signed token of a session not theirs": jwt.encode(
                {"alg": "HS256"}, admin, OctKey.import_key(SECRET)
            ),
            "not a token": "a.b.c",
        }
        for what, token in cases.items():
            assert refused(token), what
        assert not refused(tokens["access_token"])


def test_the_python_client_signs_in_with_a_device_code_and_keeps_its_tokens(
    catalog, provider, uid, monkeypatch, tmp_path
):
    """from_uri(url) with no key: the person is shown a URL and a code (here a function that
    signs in with a real browser session at the provider, as a person would), the client's
    polling gets the tokens, they are cached 0600, refreshed when they expire, and ended by
    sign_out."""
    from bluebroker.client import auth_flow, from_uri
    from bluebroker.client.transport import Transport

    monkeypatch.delenv("BLUEBROKER_API_KEY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shown = []

    def person(link: str, user_code: str) -> None:
        shown.append(user_code)
        browser = httpx.Client(follow_redirects=True)
        page = browser.get(link)
        assert user_code in page.text
        assert "Signed in" in _approve(browser, page, ALICE).text

    monkeypatch.setattr(auth_flow, "show_prompt", person)
    with _serve(catalog, provider, access_token_lifetime=2) as url:
        api = f"{url}/api/v1"
        raw = from_uri(url)["bmm"]["raw"]
        assert len(raw) == 4
        assert len(shown) == 1
        # live subscriptions (websockets) go signed in too
        assert list(raw[uid].updates(start=1, timeout=10))
        cached = auth_flow.cache_file(api)
        assert cached.stat().st_mode & 0o777 == 0o600
        assert cached.parent.stat().st_mode & 0o777 == 0o700
        tokens = json.loads(cached.read_text())
        assert tokens["principal"] == "user:testidp:alice-0001"
        # a new Python session on this machine starts signed in (the person is not asked)
        fresh = Transport(api)
        assert fresh.request("GET", f"{api}/auth/whoami").json()["id"] == "user:testidp:alice-0001"
        # the access token expires; the client refreshes by itself, rotating the refresh token
        old = {"Authorization": f"Bearer {tokens['access_token']}"}
        wait(
            lambda: httpx.get(f"{api}/auth/whoami", headers=old).status_code == 401,
            timeout=30,
            what="the access token to expire",
        )
        assert Transport(api).get_json("search/bmm/raw")["meta"]["count"] == 4
        renewed = json.loads(cached.read_text())
        assert renewed["refresh_token"] != tokens["refresh_token"]
        assert len(shown) == 1
        # a cache file others could read is not trusted: the person is asked again
        cached.chmod(0o644)
        assert Transport(api).request("GET", f"{api}/auth/whoami").json()["name"] == "alice"
        assert len(shown) == 2 and cached.stat().st_mode & 0o777 == 0o600
        # sign_out ends the session on the server and forgets the tokens
        last = json.loads(cached.read_text())
        assert auth_flow.sign_out(url) is True
        assert not cached.exists()
        assert (
            httpx.post(
                f"{api}/auth/session/refresh", json={"refresh_token": last["refresh_token"]}
            ).status_code
            == 401
        )


def test_a_client_without_a_key_is_not_prompted_by_a_server_without_sign_in(
    catalog, monkeypatch, tmp_path
):
    from bluebroker.client import AuthenticationError, auth_flow
    from bluebroker.client.transport import Transport

    monkeypatch.delenv("BLUEBROKER_API_KEY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def person(link: str, user_code: str) -> None:
        raise AssertionError("asked to sign in where no sign-in is offered")

    monkeypatch.setattr(auth_flow, "show_prompt", person)
    auth = AuthSettings(token=TOKEN, keys=ApiKeyStore(catalog.engine))
    with (
        background_server(catalog, auth=auth) as url,
        pytest.raises(AuthenticationError, match="api_key"),
    ):
        Transport(f"{url}/api/v1").get_json("search/bmm/raw")


def test_serve_with_an_oidc_config_may_listen_beyond_loopback(provider, tmp_path, monkeypatch):
    """`bluebroker serve --oidc-config FILE`: the file's mistakes are one line before anything
    serves, and with sign-in configured a bind to every interface is allowed."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    env = {k: v for k, v in os.environ.items() if k != "BLUEBROKER_API_KEY"}
    port = free_port()
    catalog = f"sqlite:///{tmp_path}/c.db"
    everywhere = ("serve", "--host", "0.0.0.0", "--port", str(port), "--catalog", catalog)
    refused = run(*everywhere, env=env)
    assert refused.returncode == 2 and "--oidc-config FILE" in refused.stderr
    config = tmp_path / "oidc.yml"
    config.write_text(f"issuer: {provider}\nclient_id: bb\ncolour: blue\n")
    wrong = run(*everywhere, "--oidc-config", str(config), env=env)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "unknown setting colour" in wrong.stderr and len(wrong.stderr.splitlines()) == 1
    config.write_text(
        f"issuer: {provider}\nclient_id: bb\nclient_secret: s\nprovider: site\n"
        "admins: [bob]\ngroups_claim: groups\naccess_token_lifetime: 10m\n"
    )
    server = Running(*everywhere, "--oidc-config", str(config), env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(base)
        _, me = _sign_in(base, BOB)
        assert me.json()["id"] == "user:site:bob-0002" and "admin" in me.json()["scopes"]
    finally:
        server.interrupt()
        server.finish()
        server.close()


def test_id_tokens_are_checked_for_nonce_audience_issuer_and_signature(catalog, provider):
    """A real ID token from the provider (its code flow driven by hand, nonce n-1) passes only
    with its own nonce, audience, issuer and an untouched signature."""
    from bluebroker.server.errors import ApiError

    meta = httpx.get(f"{provider}/.well-known/openid-configuration").json()
    redirect = "http://127.0.0.1:1/cb"
    form = httpx.post(
        meta["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": "bluebroker-tests",
            "redirect_uri": redirect,
            "scope": "openid profile",
            "state": "s",
            "nonce": "n-1",
        },
        data={"sub": ALICE["sub"]},
    )
    code = httpx.URL(form.headers["location"]).params["code"]
    tokens = httpx.post(
        meta["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=("bluebroker-tests", "client-secret"),
    ).json()
    id_token = tokens["id_token"]
    oidc = OIDC.from_engine(_config(provider), catalog.engine)
    claims = oidc.verify_id_token(id_token, "n-1")
    assert claims["sub"] == ALICE["sub"] and oidc.groups_of(claims) == ("bmm-staff", "p-101")
    with pytest.raises(ApiError, match="nonce"):
        oidc.verify_id_token(id_token, "n-2")
    other = OIDC.from_engine(_config(provider, client_id="someone-else"), catalog.engine)
    with pytest.raises(ApiError, match="aud"):
        other.verify_id_token(id_token, "n-1")
    head, _, signature = id_token.split(".")
    forged = _b64({**claims, "sub": BOB["sub"]})
    with pytest.raises(ApiError, match="signed"):
        oidc.verify_id_token(f"{head}.{forged}.{signature}", "n-1")
    with pytest.raises(ApiError, match="signed"):
        oidc.verify_id_token(f"{_b64({'alg': 'none'})}.{forged}.", "n-1")
    # a token that another issuer name signed (the provider as 127.0.0.1, configured as
    # localhost) is refused
    elsewhere = OIDC.from_engine(
        _config(provider.replace("127.0.0.1", "localhost")), catalog.engine
    )
    with pytest.raises(ApiError, match="'iss'"):
        elsewhere.verify_id_token(id_token, "n-1")


def test_sessions_are_listed_and_revoked_by_their_owner_or_an_admin(catalog, provider):
    with _serve(catalog, provider) as url:
        api = f"{url}/api/v1"
        alice, _ = _sign_in(url, ALICE)
        bob, _ = _sign_in(url, BOB)  # an admin (the config's admins)
        device = _device_tokens(url, ALICE)
        mine = alice.get(f"{api}/auth/sessions").json()["sessions"]
        assert sorted(s["kind"] for s in mine) == ["browser", "device"]
        assert {s["principal"] for s in mine} == {"user:testidp:alice-0001"}
        assert alice.get(f"{api}/auth/sessions", params={"all": "true"}).status_code == 403
        everyone = bob.get(f"{api}/auth/sessions", params={"all": "true"}).json()["sessions"]
        assert len(everyone) == 3
        bobs = next(s["id"] for s in everyone if s["principal"].endswith("bob-0002"))
        # Alice cannot end Bob's session (nor learn that it exists)
        csrf = {"X-CSRF-Token": alice.cookies[CSRF_COOKIE]}
        other = alice.delete(f"{api}/auth/sessions", params={"id": bobs}, headers=csrf)
        assert other.status_code == 404
        # Bob, an admin, ends Alice's browser session; by cookie that needs the CSRF token
        browser_session = next(s["id"] for s in mine if s["kind"] == "browser")
        assert bob.delete(f"{api}/auth/sessions", params={"id": browser_session}).status_code == 403
        ended = bob.delete(
            f"{api}/auth/sessions",
            params={"id": browser_session},
            headers={"X-CSRF-Token": bob.cookies[CSRF_COOKIE]},
        )
        assert ended.json() == {"revoked": 1}
        assert alice.get(f"{api}/auth/whoami").status_code == 401
        # her device session lives on
        bearer = {"Authorization": f"Bearer {device['access_token']}"}
        assert httpx.get(f"{api}/auth/whoami", headers=bearer).status_code == 200


def test_a_websocket_signed_in_by_cookie_must_come_from_this_site(catalog, provider, uid):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with _serve(catalog, provider) as url:
        browser, _ = _sign_in(url, ALICE)
        cookie = f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}"
        ws = url.replace("http://", "ws://") + "/api/v1/stream/single/bmm/raw?start=1"
        with connect(ws, additional_headers={"Cookie": cookie, "Origin": url}) as live:
            assert json.loads(live.recv(timeout=10))["sequence"] >= 4
        evil = {"Cookie": cookie, "Origin": "https://evil.example"}
        with connect(ws, additional_headers=evil) as live, pytest.raises(ConnectionClosed) as err:
            live.recv(timeout=10)
        assert err.value.rcvd.code == 1008 and "this site" in err.value.rcvd.reason


def test_behind_https_the_cookies_are_secure_and_links_use_the_public_url(catalog, provider):
    public = "https://data.example.org"
    with _serve(catalog, provider, public_url=public) as url:
        start = httpx.get(f"{url}/api/v1/auth/login")
        assert start.status_code == 302
        location = httpx.URL(start.headers["location"])
        assert location.params["redirect_uri"] == f"{public}/api/v1/auth/callback"
        cookie = start.headers["set-cookie"]
        assert cookie.startswith("bluebroker_login=") and "Secure" in cookie
        assert "HttpOnly" in cookie and "Path=/api/v1/auth" in cookie
        device = httpx.post(f"{url}/api/v1/auth/device_code").json()
        assert device["verification_uri"] == f"{public}/api/v1/auth/device"


def test_bluebroker_login_and_logout_on_the_command_line(catalog, provider, tmp_path):
    """`bluebroker login URL` prints a URL and a code, waits for the person, and leaves tokens
    that Python sessions use; `bluebroker logout URL` ends the session."""
    env = {k: v for k, v in os.environ.items() if k != "BLUEBROKER_API_KEY"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    with _serve(catalog, provider) as url:
        login = Running("login", url, env=env)
        try:
            line = login.wait_for("To sign in, open ")
            link = line.split(" open ")[1].split()[0]
            code = line.rstrip(".\n").split()[-1]
            browser = httpx.Client(follow_redirects=True)
            page = browser.get(link)
            assert code in page.text
            assert "Signed in" in _approve(browser, page, BOB).text
            status, lines = login.finish()
        finally:
            login.close()
        assert status == 0, lines
        assert f"signed in to {url} as user:testidp:bob-0002" in "".join(lines)
        cached = json.loads(
            next((tmp_path / "cache" / "bluebroker" / "tokens").glob("*.json")).read_text()
        )
        bearer = {"Authorization": f"Bearer {cached['access_token']}"}
        assert httpx.get(f"{url}/api/v1/auth/whoami", headers=bearer).json()["name"] == "bob"
        out = run("logout", url, env=env)
        assert out.returncode == 0 and "signed out" in out.stdout
        assert httpx.get(f"{url}/api/v1/auth/whoami", headers=bearer).status_code == 401
        assert "no session" in run("logout", url, env=env).stdout
    auth = AuthSettings(token=TOKEN, keys=ApiKeyStore(catalog.engine))
    with background_server(catalog, auth=auth) as url:
        refused = run("login", url, env=env)
        assert refused.returncode == 2 and "offers no OpenID Connect sign-in" in refused.stderr


def test_a_provider_that_is_away_is_a_502_that_says_so(catalog):
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with _serve(catalog, away) as url:
        got = httpx.get(f"{url}/api/v1/auth/login")
        assert got.status_code == 502 and "cannot be reached" in got.json()["detail"]
        assert httpx.get(f"{url}/api/v1/auth/methods").json()["oidc"]["provider"] == "testidp"


def test_groups_from_the_provider_decide_which_runs_each_user_reads(catalog, provider, RE):
    """The access policy sees the provider's groups: Carol (pass-1, by browser) and Dave
    (pass-2, by device code; his provider sends groups as one string) each find only their
    proposal's runs, and the other's run is a 404."""
    from bluesky import plans as bp
    from ophyd.sim import det1

    from bluebroker.ingest import CatalogWriter
    from bluebroker.server.policy import AccessPolicy

    token = RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    uids = {s: list(RE(bp.count([det1]), data_session=s)) for s in ("pass-1", "pass-2")}
    uids["pass-2"] += RE(bp.count([det1]), data_session="pass-2")
    RE.unsubscribe(token)
    policy = {"grants": [{"to": {"signed_in": True}, "runs": {"data_session": "{groups}"}}]}
    oidc = OIDC.from_engine(_config(provider), catalog.engine)
    auth = AuthSettings(token=TOKEN, oidc=oidc, policy=AccessPolicy.from_dict(policy))
    with background_server(catalog, auth=auth) as url:
        api = f"{url}/api/v1"
        carol, me = _sign_in(url, CAROL)
        assert me.json()["groups"] == ["pass-1"]
        page = carol.get(f"{api}/search/bmm/raw").json()
        assert page["meta"]["count"] == 1 and [d["id"] for d in page["data"]] == uids["pass-1"]
        dave = {"Authorization": f"Bearer {_device_tokens(url, DAVE)['access_token']}"}
        page = httpx.get(f"{api}/search/bmm/raw", headers=dave).json()
        assert {d["id"] for d in page["data"]} == set(uids["pass-2"])
        other = httpx.get(f"{api}/metadata/bmm/raw/{uids['pass-1'][0]}", headers=dave)
        assert other.status_code == 404
        assert carol.get(f"{api}/metadata/bmm/raw/{uids['pass-2'][0]}").status_code == 404


def test_a_script_with_nobody_at_a_terminal_is_told_to_log_in_first(
    catalog, provider, monkeypatch, tmp_path
):
    """A cron job or batch script meeting a sign-in does not wait 15 minutes for a person who
    is not there: it fails at once, naming `bluebroker login`; at a terminal it is asked."""
    import io

    from bluebroker.client import auth_flow
    from bluebroker.client.auth_flow import SignInError
    from bluebroker.client.transport import Transport

    monkeypatch.delenv("BLUEBROKER_API_KEY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("sys.stdin", io.StringIO())
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not auth_flow._watched()
    with _serve(catalog, provider) as url, pytest.raises(SignInError, match="bluebroker login"):
        Transport(f"{url}/api/v1").get_json("search/bmm/raw")
    monkeypatch.setattr("sys.stderr", _Tty())
    assert auth_flow._watched()


class _Tty:
    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
