"""Authentication: every request and websocket becomes a :class:`Principal`, or a 401.

Credentials, in the order they are looked for:

- ``Authorization: Apikey <key>`` or ``Authorization: Bearer <key or access token>``;
- ``?api_key=<key>`` or ``?token=<token>`` (the single-user URL printed at start, as
  Jupyter's; a browser that opens it gets the token as an HttpOnly cookie);
- the ``bluebroker_token`` cookie, and an OpenID Connect session cookie when a provider is set.

A credential that is given but wrong is a 401 even on a ``--public`` server: a typo'd key
should not silently fall back to anonymous access. Secrets are compared in constant time and
never logged (``server/run.py`` redacts them from access logs).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.requests import HTTPConnection

from bluebroker.catalog import access

from .api_keys import ApiKeyStore, KeyInfo
from .errors import ApiError
from .principals import ANONYMOUS, OWNER, READ_METADATA, Principal
from .rate_limit import RateLimit

TOKEN_COOKIE = "bluebroker_token"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bluebroker", Apikey'}


@dataclass
class AuthSettings:
    """How a server lets people in.

    ``token``: the single-user secret (printed at start, or fixed with ``--api-key``);
    ``public``: anonymous callers may read; ``keys``: per-user and service API keys;
    ``oidc``: an OpenID Connect login (``server/oidc.py``) or None; ``policy``: who may read
    which runs (``server/policy.py``) or None for "every signed-in caller reads everything".
    """

    token: str | None = None
    public: bool = False
    keys: ApiKeyStore | None = None
    oidc: Any = None
    policy: Any = None
    login_url: str | None = None  # what a 401 tells people to open (the printed URL's base)
    cors_origins: tuple[str, ...] = ()  # browsers on these origins may call the API
    # wrong credentials per client address and minute before 429s (guessing keys is slow)
    failures: RateLimit = field(default_factory=lambda: RateLimit(20))
    # calls of the sign-in and API-key routes per client address and minute
    auth_calls: RateLimit = field(default_factory=lambda: RateLimit(60))

    @property
    def open(self) -> bool:
        """No credential is needed for anything (a library server with nothing configured)."""
        return self.token is None and self.keys is None and self.oidc is None and not self.public


def settings(conn: HTTPConnection) -> AuthSettings:
    return conn.app.state.auth


def _given(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("apikey", "bearer") and value.strip():
        return value.strip()
    for name in ("api_key", "token"):
        value = conn.query_params.get(name)
        if value:
            return value
    return conn.cookies.get(TOKEN_COOKIE) or None


def key_principal(info: KeyInfo) -> Principal:
    """The caller an API key stands for, narrowed to the key's scopes."""
    scopes = frozenset(info.scopes)
    if info.principal == OWNER.id:
        return OWNER.with_scopes(scopes, "api-key")
    kind, _, name = info.principal.partition(":")
    groups = frozenset(info.groups)
    return Principal(
        info.principal, kind or "user", scopes, name=name, groups=groups, via="api-key"
    )


def authenticate(conn: HTTPConnection) -> Principal:
    """The caller of ``conn`` (cached on the connection), or ApiError 401 saying what to do."""
    cached = getattr(conn.state, "principal", None)
    if cached is not None:
        return cached
    auth = settings(conn)
    principal = _authenticate(conn, auth)
    conn.state.principal = principal
    # what the caller may read, for every catalog query of this request (catalog/access.py)
    access.set_current(None if auth.policy is None else auth.policy.access_for(principal))
    return principal


def _authenticate(conn: HTTPConnection, auth: AuthSettings) -> Principal:
    if auth.open:
        return OWNER
    secret = _given(conn)
    if secret is not None:
        if auth.token is not None and hmac.compare_digest(
            secret.encode("utf-8", "surrogatepass"), auth.token.encode()
        ):
            if conn.query_params.get("token") == secret and TOKEN_COOKIE not in conn.cookies:
                conn.state.set_token_cookie = secret  # the browser keeps it (see headers.py)
            return OWNER
        if auth.keys is not None:
            info = auth.keys.lookup(secret)
            if info is not None:
                return key_principal(info)
        if auth.oidc is not None:
            found = auth.oidc.principal_from_bearer(secret)
            if found is not None:
                return found
        auth.failures.hit(conn, "failed sign-ins")
        raise ApiError(
            401,
            "the API key or token is not valid for this server (mistyped, expired or "
            "revoked); check it, or ask for a new one",
            CHALLENGE,
        )
    if auth.oidc is not None:
        found = auth.oidc.principal_from_session(conn)
        if found is not None:
            return found
    if auth.public:
        return ANONYMOUS
    raise ApiError(401, _how_to_sign_in(auth), CHALLENGE)


def _how_to_sign_in(auth: AuthSettings) -> str:
    ways = []
    if auth.token is not None and auth.login_url:
        ways.append(f"open the URL printed when the server started ({auth.login_url}/?token=...)")
    if auth.oidc is not None:
        ways.append("sign in at /api/v1/auth/login")
    ways.append(
        "in Python: from_uri(url, api_key=...) or set BLUEBROKER_API_KEY; over HTTP: send "
        "'Authorization: Bearer <key>' (or 'Apikey <key>', or ?api_key=<key>)"
    )
    return "this server needs its token or an API key: " + "; ".join(ways)


def require(scope: str):
    """A route dependency: the caller must hold ``scope`` (403 when signed in without it)."""

    async def check(request: Request) -> Principal:  # async: no thread hop per request
        principal = authenticate(request)
        if not principal.has(scope):
            raise ApiError(
                403,
                f"this credential does not allow {scope}; ask for a key or role with it",
            )
        return principal

    return check


def api_key_problem(conn: HTTPConnection, scope: str = READ_METADATA) -> str | None:
    """For routes that answer without raising (websockets): why the caller may not pass, or
    None."""
    try:
        principal = authenticate(conn)
    except ApiError as err:
        return err.detail
    if not principal.has(scope):
        return f"this credential does not allow {scope}"
    return None


def require_api_key(request: Request) -> Principal:
    """Kept for routes that only need a signed-in reader."""
    return authenticate(request)
