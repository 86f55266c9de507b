"""Who am I, and API keys: ``/api/v1/auth/whoami`` and ``/api/v1/auth/apikey``.

People make keys for their scripts and services with the scopes they need (never more than
their own); admins may make, list and revoke anyone's. The secret is in the answer to the
POST alone: the server keeps only its hash.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..api_keys import ApiKeyStore
from ..auth import authenticate, settings
from ..deps import json_response
from ..errors import ApiError
from ..principals import ADMIN, Principal, parse_scopes

router = APIRouter()


class NewKey(BaseModel):
    scopes: list[str] | None = Field(
        None, description="scopes of the key (default: the caller's own)", max_length=8
    )
    expires_in: float | None = Field(
        None, description="seconds until the key expires (default: never)", gt=0, lt=3.2e9
    )
    note: str = Field("", description="what the key is for", max_length=400)
    principal: str | None = Field(
        None, description="admins only: make the key for this principal", max_length=400
    )


def _caller(request: Request) -> Principal:
    settings(request).auth_calls.hit(request, "API-key requests")
    principal = authenticate(request)
    if principal.kind == "anonymous":
        raise ApiError(401, "sign in first: anonymous callers have no API keys")
    return principal


def _store(request: Request) -> ApiKeyStore:
    store = settings(request).keys
    if store is None:
        raise ApiError(404, "this server does not issue API keys (it was started without them)")
    return store


@router.get("/api/v1/auth/whoami", summary="The caller: principal, scopes, how signed in")
def whoami(request: Request) -> Response:
    p = authenticate(request)
    return json_response(
        {
            "id": p.id,
            "kind": p.kind,
            "name": p.name,
            "scopes": sorted(p.scopes),
            "groups": sorted(p.groups),
            "via": p.via,
        }
    )


@router.post("/api/v1/auth/apikey", summary="Make an API key (its secret is shown once)")
def create_key(request: Request, body: NewKey) -> Response:
    caller = _caller(request)
    store = _store(request)
    try:
        scopes = parse_scopes(body.scopes) if body.scopes else caller.scopes
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    if ADMIN not in caller.scopes and not scopes <= caller.scopes:
        extra = ", ".join(sorted(scopes - caller.scopes))
        raise ApiError(403, f"a key cannot have scopes its maker lacks ({extra})")
    owner = caller.id
    if body.principal is not None and body.principal != caller.id:
        if not caller.has(ADMIN):
            raise ApiError(403, "only admins make keys for others")
        owner = body.principal
    groups = caller.groups if owner == caller.id else frozenset()
    secret, info = store.create(
        owner, scopes, expires_in=body.expires_in, note=body.note, groups=groups
    )
    return json_response({"secret": secret, **info.as_dict()})


@router.get("/api/v1/auth/apikey", summary="List API keys (one's own; admins: all=true)")
def list_keys(request: Request, all: bool = Query(False)) -> Response:
    caller = _caller(request)
    if all and not caller.has(ADMIN):
        raise ApiError(403, "only admins list everyone's keys")
    keys = _store(request).list(None if all else caller.id)
    return json_response({"keys": [k.as_dict() for k in keys]})


@router.delete("/api/v1/auth/apikey", summary="Revoke an API key by its first eight characters")
def revoke_key(
    request: Request, first_eight: str = Query(..., min_length=8, max_length=8)
) -> Response:
    caller = _caller(request)
    n = _store(request).revoke(first_eight, None if caller.has(ADMIN) else caller.id)
    if n == 0:
        raise ApiError(404, f"no live key of yours starts with {first_eight!r}")
    return json_response({"revoked": n})
