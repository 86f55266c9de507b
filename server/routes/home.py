"""``/``: where the printed ``?token=`` URL lands. Until the web page exists (its own issue)
this says where things are, and a browser that came with the token keeps it as a cookie."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bluebroker import __version__

from ..auth import authenticate
from ..errors import ApiError

router = APIRouter()

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bluebroker</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em">
<h1>bluebroker {version}</h1>
<p>{status}</p>
<ul>
<li><a href="/docs">API documentation</a> (try the routes from the page)</li>
<li><a href="/api/v1/">API root</a>: formats, queries, sign-in</li>
<li>Python: <code>from bluebroker.client import from_uri; c = from_uri("{base}")</code></li>
</ul>
</body></html>
"""


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    try:
        who = authenticate(request)
        status = f"Signed in ({escape(who.kind)})."
    except ApiError:
        status = (
            "Not signed in: open the URL the server printed when it started (it ends in "
            "<code>?token=...</code>), or use an API key."
        )
    if request.query_params.get("token") and getattr(request.state, "set_token_cookie", None):
        # the token is now a cookie: take it out of the address bar and the history
        response: Response = RedirectResponse("/", status_code=303)
        return response
    return HTMLResponse(PAGE.format(version=__version__, status=status, base=escape(base)))
