"""Sign-in with OpenID Connect: the browser's code flow, the client's device-code flow,
refresh and logout, under ``/api/v1/auth/``.

Browser: ``/auth/login?next=/path`` sends the person to the provider with PKCE, a state and a
nonce (kept server-side, and bound to this browser by a short-lived cookie);
``/auth/callback`` checks them, trades the code for the provider's ID token, and gives the
browser a session cookie and a CSRF cookie before going back to ``next`` (a path on this
server only).

Python client and CLI (RFC 8628, as Tiled does it): ``POST /auth/device_code`` gives a device
code and a user code; the person opens ``/auth/device?user_code=...`` in a browser and signs
in; the client's polling of ``POST /auth/device_code/token`` then gets an access token and a
refresh token. ``POST /auth/session/refresh`` rotates the refresh token, ``POST /auth/logout``
revokes the session. Each of these routes is rate-limited per address.
"""

from __future__ import annotations

import html
import json
import time
import unicodedata
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ..auth import authenticate, settings
from ..deps import json_response
from ..errors import ApiError
from ..oidc import CSRF_COOKIE, OIDC, SESSION_COOKIE
from ..principals import ADMIN, Principal
from ..sessions import Session, normal_user_code

router = APIRouter()
LOGIN_COOKIE = "bluebroker_login"
AUTH = "/api/v1/auth"


def _oidc(request: Request, what: str = "sign-in requests") -> OIDC:
    found = settings(request).oidc
    if found is None:
        raise ApiError(
            404, "this server has no OpenID Connect sign-in (it was started without --oidc-config)"
        )
    settings(request).auth_calls.hit(request, what)
    return found


def _base(request: Request, oidc: OIDC) -> str:
    return (oidc.config.public_url or str(request.base_url)).rstrip("/")


def _secure(request: Request, oidc: OIDC) -> bool:
    return _base(request, oidc).startswith("https://")


def safe_next(text: str) -> str:
    """``next`` as a path on this server; anything that could leave it is a 400."""
    bad = (
        not text.startswith("/")
        or text.startswith(("//", "/\\"))
        or "\\" in text
        or len(text) > 2000
        or any(unicodedata.category(c).startswith("C") for c in text)
    )
    parts = urlsplit(text)
    if bad or parts.scheme or parts.netloc:
        raise ApiError(400, "next must be a path on this server, such as /api/v1/")
    return text


@router.get(f"{AUTH}/methods", summary="How to sign in here (OpenID Connect routes, if any)")
def methods(request: Request) -> Response:
    oidc = settings(request).oidc
    if oidc is None:
        return json_response({"oidc": None})
    return json_response(
        {
            "oidc": {
                "provider": oidc.config.provider,
                "login": f"{AUTH}/login",
                "device_code": f"{AUTH}/device_code",
                "token": f"{AUTH}/device_code/token",
                "refresh": f"{AUTH}/session/refresh",
                "logout": f"{AUTH}/logout",
            }
        }
    )


@router.get(
    f"{AUTH}/login",
    summary="Sign in through the OpenID Connect provider (a browser)",
)
def login(
    request: Request,
    next: str = Query("/", max_length=2000, description="a path on this server to return to"),
    user_code: str | None = Query(None, max_length=20, description="a device's code to approve"),
) -> Response:
    oidc = _oidc(request)
    target = safe_next(next)
    if user_code is not None:
        user_code = normal_user_code(user_code)
        if not oidc.store.device_waiting(user_code):
            raise ApiError(400, f"no device is waiting for the code {user_code}; check it")
    meta = oidc.metadata()
    state, binding, pending = oidc.store.start_login(target, user_code)
    url = prepare_grant_uri(
        meta["authorization_endpoint"],
        oidc.config.client_id,
        "code",
        redirect_uri=_base(request, oidc) + f"{AUTH}/callback",
        scope=" ".join(oidc.config.scopes),
        state=state,
        nonce=pending.nonce,
        code_challenge=create_s256_code_challenge(pending.verifier),
        code_challenge_method="S256",
    )
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        LOGIN_COOKIE,
        binding,
        max_age=600,
        path=AUTH,
        httponly=True,
        samesite="lax",
        secure=_secure(request, oidc),
    )
    return response


@router.get(
    f"{AUTH}/callback",
    summary="Where the provider sends the browser back",
    response_class=HTMLResponse,  # a device's approval page; a browser's is a redirect
)
def callback(
    request: Request,
    code: str | None = Query(None, max_length=4096),
    state: str | None = Query(None, max_length=200),
    error: str | None = Query(None, max_length=200),
) -> Response:
    oidc = _oidc(request)
    if error is not None:
        raise ApiError(400, f"the provider did not sign you in ({error}); try again")
    if not code or not state:
        raise ApiError(
            400, "the provider's answer lacks code or state; start at /api/v1/auth/login"
        )
    pending = oidc.store.finish_login(state, request.cookies.get(LOGIN_COOKIE, ""))
    if isinstance(pending, str):
        raise ApiError(400, pending)
    tokens = _exchange(request, oidc, code, pending.verifier)
    claims = oidc.verify_id_token(tokens["id_token"], pending.nonce)
    if pending.user_code is not None:
        session, _ = oidc.session_for(claims, "device")
        if not oidc.store.approve_device(pending.user_code, session.id):
            oidc.store.revoke(session.id)
            raise ApiError(400, "that device code expired or was used; start again in Python")
        response = _page(
            "Signed in",
            f"You are signed in as {oidc.name_of(claims)}. Go back to your terminal or "
            "notebook: it continues by itself. You may close this window.",
        )
    else:
        session, cookie = oidc.session_for(claims, "browser")
        response = RedirectResponse(pending.next, status_code=303)
        _set_session_cookies(request, oidc, response, session, cookie)
    response.delete_cookie(LOGIN_COOKIE, path=AUTH)
    return response


def _exchange(request: Request, oidc: OIDC, code: str, verifier: str) -> dict:
    """The provider's tokens for ``code`` (client authentication as the provider prefers)."""
    meta = oidc.metadata()
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _base(request, oidc) + f"{AUTH}/callback",
        "code_verifier": verifier,
        "client_id": oidc.config.client_id,
    }
    methods = meta.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    auth = None
    if oidc.config.client_secret:
        if "client_secret_basic" in methods:
            auth = (oidc.config.client_id, oidc.config.client_secret)
        else:
            data["client_secret"] = oidc.config.client_secret
    try:
        got = httpx.post(meta["token_endpoint"], data=data, auth=auth, timeout=oidc.config.timeout)
    except httpx.HTTPError:
        raise ApiError(502, "the sign-in provider cannot be reached; try again later") from None
    try:
        tokens = got.json()
    except ValueError:
        tokens = {}
    if got.status_code != 200 or not isinstance(tokens.get("id_token"), str):
        reason = tokens.get("error", f"HTTP {got.status_code}") if isinstance(tokens, dict) else ""
        raise ApiError(400, f"the provider refused the sign-in code ({reason}); start again")
    return tokens


def _set_session_cookies(
    request: Request, oidc: OIDC, response: Response, session: Session, cookie: str
) -> None:
    secure = _secure(request, oidc)
    age = int(oidc.config.session_lifetime)
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=age, path="/", httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(  # readable by the pages' scripts: they echo it as X-CSRF-Token
        CSRF_COOKIE,
        oidc.csrf_token(session.id),
        max_age=age,
        path="/",
        samesite="strict",
        secure=secure,
    )


def _page(title: str, text: str, form: str = "") -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


class RefreshBody(BaseModel):
    refresh_token: str = Field(..., min_length=1, max_length=200)


def _tokens(oidc: OIDC, session: Session, refresh_token: str) -> Response:
    access, lifetime = oidc.access_token(session)
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": lifetime,
        "refresh_token": refresh_token,
        "refresh_token_expires_in": int(session.expires - time.time()),
        "principal": session.principal,
    }
    response = json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(
    f"{AUTH}/session/refresh",
    summary="A new access token for a refresh token",
)
def refresh(request: Request, body: RefreshBody) -> Response:
    oidc = _oidc(request, "token refreshes")
    found = oidc.store.rotate(body.refresh_token)
    if found is None:
        raise ApiError(
            401, "this refresh token is not valid (expired, revoked or already used); sign in again"
        )
    session, token = found
    return _tokens(oidc, session, token)


class LogoutBody(BaseModel):
    refresh_token: str | None = Field(None, max_length=200)


@router.post(
    f"{AUTH}/logout",
    summary="End this session (cookie, access token or refresh token)",
)
def logout(request: Request, body: LogoutBody | None = None) -> Response:
    oidc = _oidc(request)
    revoked = 0
    if body is not None and body.refresh_token:
        revoked = int(oidc.store.revoke_refresh(body.refresh_token) is not None)
    else:
        principal = authenticate(request)  # a cookie needs its CSRF token here too
        signed_in = principal.via in ("session", "bearer")
        session_id = principal.claims.get("session") if signed_in else None
        if session_id is None:
            raise ApiError(
                400, "this credential is not a sign-in session (revoke API keys at /auth/apikey)"
            )
        revoked = oidc.store.revoke(session_id)
    response = json_response({"revoked": revoked})
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/")
    return response


@router.post(
    f"{AUTH}/device_code",
    summary="Start signing in a Python client or the CLI",
)
def device_code(request: Request) -> Response:
    oidc = _oidc(request)
    code, user_code = oidc.store.start_device(oidc.config.device_code_lifetime)
    page = _base(request, oidc) + f"{AUTH}/device"
    return json_response(
        {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": page,
            "verification_uri_complete": page + "?" + urlencode({"user_code": user_code}),
            "expires_in": int(oidc.config.device_code_lifetime),
            "interval": oidc.config.device_poll_interval,
        }
    )


@router.get(
    f"{AUTH}/device",
    summary="The page where a person approves a device's code",
    response_class=HTMLResponse,
)
def device_page(request: Request, user_code: str = Query("", max_length=20)) -> Response:
    _oidc(request)
    code = normal_user_code(user_code) if user_code.strip() else ""
    # The code is typed into a form that comes back here; going on to the provider is a
    # link, not a form: CSP's form-action 'self' would stop a form's redirect elsewhere.
    form = (
        f"<form method='get' action='{AUTH}/device'><label>Code "
        f"<input name='user_code' value='{html.escape(code)}' required autocomplete='off'>"
        "</label> <button type='submit'>Check</button></form>"
    )
    if len(code) == 9:
        link = html.escape(f"{AUTH}/login?" + urlencode({"user_code": code}))
        form = (
            f"<p>Code: <strong>{html.escape(code)}</strong></p>"
            f"<p><a id='sign-in' href='{link}'>Sign in to approve it</a></p>{form}"
        )
    return _page(
        "Sign in a Python session",
        "Check that this code is the one your terminal or notebook shows, then sign in. "
        "Do not sign in for a code someone else sent you.",
        form,
    )


class PollBody(BaseModel):
    device_code: str = Field(..., min_length=1, max_length=200)


@router.post(
    f"{AUTH}/device_code/token",
    summary="The device's tokens, once its person signed in",
)
def device_token(request: Request, body: PollBody) -> Response:
    oidc = settings(request).oidc
    if oidc is None:
        raise ApiError(404, "this server has no OpenID Connect sign-in")
    found = oidc.store.poll_device(body.device_code, oidc.config.device_poll_interval)
    if isinstance(found, str):
        if found in ("invalid_grant", "expired_token"):
            settings(request).auth_calls.hit(request, "sign-in requests")  # guesses cost
        words = {
            "authorization_pending": "waiting for the person to sign in in the browser",
            "slow_down": "polling too often; wait the interval between polls",
            "expired_token": "the code expired before anyone signed in; start again",
            "invalid_grant": "this device code is unknown or was already used",
        }
        return Response(
            json.dumps({"error": found, "detail": words[found]}),
            status_code=400,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    return _tokens(oidc, found, oidc.store.issue_refresh(found.id))


def _signed_in(request: Request) -> tuple[OIDC, Principal]:
    oidc = _oidc(request, "session requests")
    caller = authenticate(request)
    if caller.kind == "anonymous":
        raise ApiError(401, "sign in first: anonymous callers have no sessions")
    return oidc, caller


@router.get(
    f"{AUTH}/sessions",
    summary="Live sign-in sessions (one's own; admins: all=true)",
)
def list_sessions(request: Request, all: bool = Query(False)) -> Response:
    oidc, caller = _signed_in(request)
    if all and not caller.has(ADMIN):
        raise ApiError(403, "only admins list everyone's sessions")
    return json_response({"sessions": oidc.store.list(None if all else caller.id)})


@router.delete(
    f"{AUTH}/sessions",
    summary="Revoke a sign-in session (one's own; admins: any)",
)
def revoke_session(request: Request, id: str = Query(..., min_length=1, max_length=64)) -> Response:
    oidc, caller = _signed_in(request)
    n = oidc.store.revoke(id, None if caller.has(ADMIN) else caller.id)
    if n == 0:
        raise ApiError(404, "no live session of yours has that id (see GET /api/v1/auth/sessions)")
    return json_response({"revoked": n})
