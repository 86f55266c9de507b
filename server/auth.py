"""API-key authentication: ``Authorization: Apikey KEY`` or ``?api_key=KEY``.

The full security model (users, scopes, access policies) comes in its own issue; this keeps a
server that was given a key closed to anyone without it.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from .errors import ApiError


async def require_api_key(request: Request) -> None:  # async: no thread hop per request
    expected = request.app.state.api_key
    if expected is None:
        return
    given = request.query_params.get("api_key")
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "apikey":
        given = value.strip()
    if given is None:
        raise ApiError(
            401,
            "this server needs an API key: send the header "
            "'Authorization: Apikey <key>' or add '?api_key=<key>'",
            {"WWW-Authenticate": "Apikey"},
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(
            401,
            "the API key is not valid for this server; check it for typos",
            {"WWW-Authenticate": "Apikey"},
        )
