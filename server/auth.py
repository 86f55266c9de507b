"""API-key authentication: ``Authorization: Apikey KEY`` or ``?api_key=KEY``.

The full security model (users, scopes, access policies) comes in its own issue; this keeps a
server that was given a key closed to anyone without it.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.requests import HTTPConnection

from .errors import ApiError


def api_key_problem(conn: HTTPConnection) -> str | None:
    """What is wrong with the connection's API key, or None when it may pass (HTTP requests
    and websockets alike)."""
    expected = conn.app.state.api_key
    if expected is None:
        return None
    given = conn.query_params.get("api_key")
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "apikey":
        given = value.strip()
    if given is None:
        return (
            "this server needs an API key: send the header "
            "'Authorization: Apikey <key>' or add '?api_key=<key>'"
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "the API key is not valid for this server; check it for typos"
    return None


async def require_api_key(request: Request) -> None:  # async: no thread hop per request
    problem = api_key_problem(request)
    if problem is not None:
        raise ApiError(401, problem, {"WWW-Authenticate": "Apikey"})
