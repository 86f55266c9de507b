"""Sign-in with a facility's OpenID Connect provider: who a session or access token stands for.

The provider proves who a person is once, at sign-in (``routes/oidc_routes.py`` runs the
browser's authorization-code flow with PKCE, state and nonce). From then on bluebroker keeps
its own credentials, so that every request does not call the provider:

- a browser holds a session cookie (its hash is in the catalog database, ``sessions.py``);
- the Python client and the CLI hold bluebroker's short-lived access tokens (JWTs signed with
  a server secret, 15 minutes by default) and a refresh token that rotates at each use.

Both end at a session row, so a logout or a revocation stops a stolen token within one request
on every server process. Tokens are made and checked with joserfc (HS256 only: an ``alg`` of
``none`` or a public-key trick is refused before any claim is read); the provider's ID tokens
are checked against its published keys (JWKS), issuer, audience, expiry and our nonce.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from starlette.requests import HTTPConnection

from .errors import ApiError
from .principals import ADMIN, READ_DATA, READ_METADATA, WRITE_DATA, Principal
from .sessions import Session, SessionStore

SESSION_COOKIE = "bluebroker_session"
CSRF_COOKIE = "bluebroker_csrf"
CSRF_HEADER = "x-csrf-token"
TOKEN_ISSUER = "bluebroker"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
USER_SCOPES = frozenset({READ_METADATA, READ_DATA, WRITE_DATA})
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
KEPT_CLAIMS = ("iss", "sub", "name", "preferred_username", "email")  # and the groups claim


class OIDCConfigError(ValueError):
    """The OpenID Connect configuration is wrong; the message says what to change."""


def _seconds(value: Any, name: str) -> float:
    from .api_keys import parse_duration

    try:
        return parse_duration(str(value))
    except ValueError as err:
        raise OIDCConfigError(f"{name}: {err}") from None


@dataclass
class OIDCConfig:
    """One provider. ``provider`` names it in principal ids (``user:<provider>:<sub>``);
    ``admins`` are usernames, subjects or principal ids that get the ``admin`` scope;
    ``public_url`` is this server's address as browsers see it (behind a proxy), from which
    the redirect URI ``<public_url>/api/v1/auth/callback`` is made."""

    issuer: str
    client_id: str
    client_secret: str = ""
    provider: str = "oidc"
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    admins: tuple[str, ...] = ()
    public_url: str | None = None
    access_token_lifetime: float = 900.0
    session_lifetime: float = 14 * 86400.0
    device_code_lifetime: float = 900.0
    device_poll_interval: float = 5.0
    secret: str | None = None  # signs access tokens; default: one kept in the database
    timeout: float = 10.0  # seconds for calls to the provider

    @classmethod
    def from_dict(cls, raw: dict) -> OIDCConfig:
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict):
            raise OIDCConfigError("the OpenID Connect config must be a mapping of settings")
        unknown = sorted(set(raw) - known)
        if unknown:
            raise OIDCConfigError(
                f"unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        for need in ("issuer", "client_id"):
            if not raw.get(need):
                raise OIDCConfigError(f"'{need}' is missing; it comes from the provider")
        values = dict(raw)
        for name in (
            "issuer",
            "client_id",
            "client_secret",
            "provider",
            "username_claim",
            "groups_claim",
            "public_url",
            "secret",
        ):
            if name in values and values[name] is not None:
                if not isinstance(values[name], str | int | float) or isinstance(
                    values[name], bool
                ):
                    raise OIDCConfigError(f"'{name}' must be a single value")
                values[name] = str(values[name])
        if not str(values["issuer"]).startswith(("https://", "http://")):
            raise OIDCConfigError("'issuer' must be the provider's http(s) URL")
        for name in ("scopes", "admins"):
            if name in values:
                item = values[name] or ()
                if not isinstance(item, str | list | tuple):
                    raise OIDCConfigError(f"'{name}' must be a list")
                values[name] = tuple(item.split() if isinstance(item, str) else map(str, item))
        if "openid" not in values.get("scopes", ("openid",)):
            raise OIDCConfigError("'scopes' must include openid")
        for name in ("access_token_lifetime", "session_lifetime", "device_code_lifetime"):
            if name in values:
                values[name] = _seconds(values[name], name)
        for name in ("device_poll_interval", "timeout"):
            if name in values:
                try:
                    values[name] = float(values[name])
                except (TypeError, ValueError):
                    raise OIDCConfigError(f"'{name}' must be a number of seconds") from None
                if not 0 <= values[name] <= 600:
                    raise OIDCConfigError(f"'{name}' must be between 0 and 600 seconds")
        if ":" in str(values.get("provider", "")):
            raise OIDCConfigError("'provider' is a short name without ':' (e.g. the site's)")
        if values.get("secret") is not None and len(str(values["secret"])) < 32:
            raise OIDCConfigError("'secret' must be at least 32 characters (or leave it out)")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> OIDCConfig:
        """Read a YAML file such as docs/operator-guide.md shows."""
        import yaml

        try:
            raw = yaml.safe_load(Path(path).read_text())
        except OSError as err:
            raise OIDCConfigError(f"cannot read {path}: {err.strerror}") from None
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise OIDCConfigError(f"{path} is not valid YAML{line}") from None
        return cls.from_dict(raw or {})


@dataclass
class _Provider:
    """What the provider published (discovery and keys), fetched when first needed."""

    metadata: dict = field(default_factory=dict)
    keys: KeySet | None = None
    fetched: float = 0.0


class OIDC:
    """A provider's sign-in, and bluebroker's own sessions and tokens on top of it."""

    def __init__(self, config: OIDCConfig, store: SessionStore) -> None:
        self.config = config
        self.store = store
        self._provider = _Provider()
        self._key: OctKey | None = None
        self._secret = b""

    @classmethod
    def from_engine(cls, config: OIDCConfig, engine) -> OIDC:
        return cls(config, SessionStore(engine))

    # -- the provider --------------------------------------------------------------------

    def metadata(self) -> dict:
        """The provider's discovery document (checked to be the configured issuer's)."""
        if not self._provider.metadata:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = self._fetch(url)
            if found.get("issuer", "").rstrip("/") != self.config.issuer.rstrip("/"):
                raise ApiError(502, "the provider's discovery document names another issuer")
            for need in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(need), str):
                    raise ApiError(502, f"the provider's discovery document lacks {need}")
            self._provider.metadata = found
        return self._provider.metadata

    def _fetch(self, url: str) -> dict:
        try:
            got = httpx.get(url, timeout=self.config.timeout)
            got.raise_for_status()
            found = got.json()
        except (httpx.HTTPError, ValueError):
            raise ApiError(502, "the sign-in provider cannot be reached; try again later") from None
        if not isinstance(found, dict):
            raise ApiError(502, "the sign-in provider answered with something unexpected")
        return found

    def _keys(self, refresh: bool = False) -> KeySet:
        # a key the provider rotated in is fetched again, at most once a minute
        if self._provider.keys is None or (refresh and time.time() - self._provider.fetched > 60):
            self._provider.keys = KeySet.import_key_set(self._fetch(self.metadata()["jwks_uri"]))
            self._provider.fetched = time.time()
        return self._provider.keys

    def verify_id_token(self, id_token: str, nonce: str) -> dict:
        """The claims of the provider's ID token, after checking signature, issuer,
        audience, expiry and nonce; ApiError 400 otherwise."""
        for refresh in (False, True):
            try:
                token = jwt.decode(id_token, self._keys(refresh), algorithms=ID_TOKEN_ALGORITHMS)
                break
            except JoseError:
                if refresh:
                    raise ApiError(400, "the provider's ID token is not validly signed") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.metadata()["issuer"]},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
            if not isinstance(token.claims["sub"], str) or not 0 < len(token.claims["sub"]) <= 255:
                raise ApiError(400, "the provider's ID token has no usable subject (sub)")
        except JoseError as err:
            raise ApiError(
                400, f"the provider's ID token was refused ({err.description})"
            ) from None
        return token.claims

    # -- who the claims make ---------------------------------------------------------------

    def principal_id(self, sub: str) -> str:
        return f"user:{self.config.provider}:{sub}"

    def groups_of(self, claims: dict) -> tuple[str, ...]:
        found = claims.get(self.config.groups_claim, ())
        if isinstance(found, str):
            found = found.replace(",", " ").split()
        if not isinstance(found, list | tuple):
            return ()
        return tuple(sorted({str(g) for g in found if isinstance(g, str | int)}))[:500]

    def name_of(self, claims: dict) -> str:
        name = claims.get(self.config.username_claim) or claims.get("sub", "")
        return str(name)[:400]

    def session_for(self, claims: dict, kind: str) -> tuple[Session, str]:
        """A new session (browser or device) for the person ``claims`` describe."""
        kept = {k: claims[k] for k in KEPT_CLAIMS if k in claims}
        groups = self.groups_of(claims)
        kept[self.config.groups_claim] = list(groups)
        return self.store.create(
            self.principal_id(str(claims["sub"])),
            self.name_of(claims),
            groups,
            kept,
            kind,
            self.config.session_lifetime,
        )

    def principal(self, session: Session, via: str) -> Principal:
        sub = session.principal.split(":", 2)[-1]
        admin = {session.principal, session.name, sub} & set(self.config.admins)
        scopes = USER_SCOPES | {ADMIN} if admin else USER_SCOPES
        claims = {**session.claims, "session": session.id}
        return Principal(
            session.principal,
            "user",
            frozenset(scopes),
            session.name,
            frozenset(session.groups),
            claims,
            via,
        )

    # -- bluebroker's own access tokens ----------------------------------------------------

    def _signing_key(self) -> OctKey:
        if self._key is None:
            secret = self.config.secret or self.store.shared_secret("access-token-key")
            self._secret = secret.encode()
            self._key = OctKey.import_key(self._secret)
        return self._key

    def access_token(self, session: Session) -> tuple[str, int]:
        """A short-lived bearer token for ``session`` and its lifetime in seconds."""
        now = time.time()
        lifetime = max(1, int(min(self.config.access_token_lifetime, session.expires - now)))
        claims = {
            "iss": TOKEN_ISSUER,
            "aud": TOKEN_ISSUER,
            "sub": session.principal,
            "sid": session.id,
            "iat": int(now),
            "exp": int(now + lifetime + 0.999),  # never sooner than said (whole seconds)
        }
        token = jwt.encode({"alg": "HS256", "typ": "at+jwt"}, claims, self._signing_key())
        return token, lifetime

    def principal_from_bearer(self, secret: str) -> Principal | None:
        """The caller an access token of ours stands for; None for anything else (another
        kind of credential, a forged, expired or revoked token)."""
        if secret.count(".") != 2 or len(secret) > 4096:
            return None
        try:
            token = jwt.decode(secret, self._signing_key(), algorithms=["HS256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": TOKEN_ISSUER},
                aud={"essential": True, "value": TOKEN_ISSUER},
                sub={"essential": True},
                exp={"essential": True},
                sid={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError):
            return None
        session = self.store.by_id(str(token.claims["sid"]))
        if session is None or session.principal != token.claims["sub"]:
            return None  # logged out, revoked or expired since the token was made
        return self.principal(session, "bearer")

    # -- the browser's session cookie ------------------------------------------------------

    def csrf_token(self, session_id: str) -> str:
        """The value a page must echo in ``X-CSRF-Token`` (also set as a readable cookie):
        tied to the session, so a cookie planted by a sibling site does not pass."""
        self._signing_key()
        return hmac.new(self._secret, f"csrf:{session_id}".encode(), "sha256").hexdigest()

    def principal_from_session(self, conn: HTTPConnection) -> Principal | None:
        """The browser's session, or None. A request that changes something must carry the
        CSRF token; a websocket must come from this server's own pages."""
        cookie = conn.cookies.get(SESSION_COOKIE)
        if not cookie or len(cookie) > 200:
            return None
        session = self.store.by_cookie(cookie)
        if session is None:
            return None
        if conn.scope["type"] == "websocket":
            origin = conn.headers.get("origin")
            if origin is not None and not _same_origin(origin, conn):
                raise ApiError(403, "a websocket signed in by cookie must come from this site")
        elif conn.scope.get("method", "GET") not in SAFE_METHODS:
            given = conn.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.csrf_token(session.id).encode()):
                raise ApiError(
                    403,
                    "this request changes data and came with the session cookie but without "
                    "the X-CSRF-Token header (its value is the bluebroker_csrf cookie)",
                )
        return self.principal(session, "session")


def _same_origin(origin: str, conn: HTTPConnection) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(origin)
    host = conn.headers.get("host", "")
    allowed = getattr(conn.app.state.auth, "cors_origins", ())
    return parts.netloc == host or origin.rstrip("/") in {o.rstrip("/") for o in allowed}
