"""Headers every response carries, the single-user token cookie, and CORS (off by default).

- ``nosniff``, ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` on everything
  (a data URL with ``?token=`` must not leak through a Referer header);
- a Content-Security-Policy on HTML: only this server's own scripts, styles and images (the
  page loads nothing from elsewhere); Swagger UI's one inline start-up script is let through
  on ``/docs`` alone;
- when a browser opened the printed ``/?token=...`` URL, the token is set as an HttpOnly,
  SameSite=Strict cookie (Secure over https), so later requests need no token in the URL;
- CORS only for the origins an operator lists; without them browsers keep other sites out.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import TOKEN_COOKIE

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'{inline}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
DOCS_PATH = "/docs"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, cors_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.cors_origins = frozenset(o.rstrip("/") for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        allowed = origin if origin and origin.rstrip("/") in self.cors_origins else None
        if (
            allowed
            and scope["method"] == "OPTIONS"
            and _header(scope, b"access-control-request-method")
        ):
            await _preflight(send, allowed)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() not in _OURS]
                headers += COMMON
                kind = dict(headers).get(b"content-type", b"")
                if kind.startswith(b"text/html"):
                    inline = " 'unsafe-inline'" if path == DOCS_PATH else ""
                    headers.append((b"content-security-policy", CSP.format(inline=inline).encode()))
                if allowed:
                    headers += [
                        (b"access-control-allow-origin", allowed.encode()),
                        (b"access-control-allow-credentials", b"true"),
                        (b"vary", b"Origin"),
                    ]
                token = scope.get("state", {}).get("set_token_cookie")
                if token and _COOKIE_SAFE.fullmatch(token):
                    secure = "; Secure" if scope.get("scheme") == "https" else ""
                    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_COOKIE_SAFE = re.compile(r"[A-Za-z0-9_\-.~+/=]{1,512}")
_OURS = frozenset(h for h, _ in COMMON) | {b"content-security-policy"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _preflight(send: Send, origin: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                (b"access-control-allow-headers", b"Authorization, Content-Type, X-CSRF-Token"),
                (b"access-control-max-age", b"600"),
                (b"vary", b"Origin"),
                *COMMON,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
