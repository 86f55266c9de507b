"""``/``: the web page at the top of the tree, where the printed ``?token=`` URL lands (the
token becomes an HttpOnly cookie, then a 303 to ``/`` without it). See ``routes/web.py``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .web import index_response

router = APIRouter()


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    return index_response(request)
