"""The published OpenAPI schema describes the API the routes really serve, and /docs works
with no internet: every asset comes from this server."""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar

import httpx
import pytest
from fastapi.routing import APIRoute

from bluebroker import formats, packing
from bluebroker.queries import QUERIES, Query
from bluebroker.server import openapi
from bluebroker.server.app import create_app
from bluebroker.server.encoders import (
    ARRAY_FORMATS,
    DOCUMENT_FORMATS,
    STREAM_FORMATS,
    TABLE_FORMATS,
)
from bluebroker.server.run import background_server


@pytest.fixture
def schema(served):
    return httpx.get(served + "/openapi.json").json()


def _op(schema, path, method="get"):
    return schema["paths"][path][method]


def _param(op, name):
    return next((p for p in op["parameters"] if p["name"] == name), None)


def test_every_route_is_described(catalog):
    """A route added without its entry in openapi.ROUTES fails here, not silently."""
    import importlib
    import pkgutil

    from bluebroker.server import routes

    modules = [  # every route module, new ones too
        importlib.import_module(f"{routes.__name__}.{m.name}")
        for m in pkgutil.iter_modules(routes.__path__)
    ]
    app = create_app(catalog)
    routed = {
        (method.lower(), route.path.replace("{path:path}", "{path}"))
        for module in modules
        for route in (module.router.routes if hasattr(module, "router") else [])
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    published = {(m, p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert routed == set(openapi.ROUTES) == published


def test_search_filters_come_from_the_query_registry(catalog, monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Proposal(Query):
        """Runs of one beamtime proposal (a facility's own query)."""

        number: str
        name: ClassVar[str] = "proposal"

    monkeypatch.setitem(QUERIES, "proposal", Proposal)
    search = _op(create_app(catalog).openapi(), "/api/v1/search/{path}")
    for qname, cls in QUERIES.items():
        for f in dataclasses.fields(cls):
            param = _param(search, f"filter[{qname}][condition][{f.name}]")
            assert param is not None, (qname, f.name)
            assert param["in"] == "query" and formats.JSON in param["content"]
    added = _param(search, "filter[proposal][condition][number]")
    assert "beamtime proposal" in added["description"]
    assert added["content"][formats.JSON]["schema"] == {"type": "string"}
    assert _param(search, "page[limit]")["schema"]["maximum"] == 300


@pytest.mark.parametrize(
    "path, offered",
    [
        ("/api/v1/array/full/{path}", ARRAY_FORMATS),
        ("/api/v1/table/full/{path}", TABLE_FORMATS),
        ("/api/v1/container/full/{path}", STREAM_FORMATS),
        ("/api/v1/documents/{path}", DOCUMENT_FORMATS),
    ],
)
def test_formats_come_from_the_format_registry(schema, path, offered):
    op = _op(schema, path)
    enum = _param(op, "format")["schema"]["enum"]
    aliases = {k for k, v in formats.ALIASES.items() if v in offered}
    assert set(offered) <= set(enum) and aliases <= set(enum)
    assert set(offered) <= set(op["responses"]["200"]["content"])


def test_documented_parameters_are_the_real_ones(served, schema, beamline):
    """Each parameter the routes read from the query string is in the schema, and each one
    the schema lists for the data routes changes the answer."""
    uid = next(k for k in beamline if k != "frames")
    base = f"{served}/api/v1"
    array = _op(schema, "/api/v1/array/full/{path}")
    table = _op(schema, "/api/v1/table/full/{path}")
    for name in ("format", "max_size", "download", "slice"):
        assert _param(array, name) is not None, name
    for name in ("format", "column", "fill", "download"):
        assert _param(table, name) is not None, name
    assert _param(table, "column")["explode"] is True
    sse = _op(schema, "/api/v1/stream/single/{path}")
    assert {"start", "envelope_format", "Last-Event-ID"} <= {p["name"] for p in sse["parameters"]}
    for fmt in _param(array, "format")["schema"]["enum"]:
        r = httpx.get(f"{base}/array/full/bmm/raw/{uid}/primary/data/det1", params={"format": fmt})
        assert r.status_code == 200, (fmt, r.text)
        assert r.headers["content-type"].split(";")[0] in array["responses"]["200"]["content"]
    data = f"{base}/table/full/bmm/raw/{uid}/primary/data"
    r = httpx.get(data, params={"column": ["det1", "motor"], "download": "true"})
    assert list(r.json()[0]) == ["seq_num", "det1", "motor"]
    assert r.headers["content-disposition"].startswith("attachment")
    assert httpx.get(data, params={"fill": "false"}).status_code == 200


def test_errors_are_described_as_they_are_sent(served, schema):
    """No FastAPI 422 validation body: a bad parameter is a 400 with {"detail"}, as sent."""
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            bodies = openapi.ROUTES[method, path].bodies
            assert {"400", "414"} <= set(op["responses"]), (method, path)  # URL limits
            for status, response in op["responses"].items():
                if status == "200":
                    continue
                body = response["content"][formats.JSON]["schema"]
                wanted = bodies.get(int(status), ("Error",))[0]
                assert body == {"$ref": f"#/components/schemas/{wanted}"}, (method, path)
    search = _op(schema, "/api/v1/search/{path}")["responses"]
    r = httpx.get(f"{served}/api/v1/search/bmm/raw", params={"page[limit]": "many"})
    assert r.status_code == 400 and "400" in search and set(r.json()) == {"detail"}
    r = httpx.get(f"{served}/api/v1/search/{'x' * 2000}", params={"sort": "y" * 40_000})
    assert r.status_code == 414 and "414" in search and set(r.json()) == {"detail"}
    r = httpx.get(f"{served}/api/v1/search/{'x' * 2000}", params={"sort": "y" * 64_000})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain")
    assert "text/plain" in search["400"]["content"]  # uvicorn's, before the app


def test_documents_post_takes_json_and_msgpack(served, schema, RE, recorder):
    from ophyd.sim import det

    op = _op(schema, "/api/v1/documents/{path}", "post")
    assert set(op["requestBody"]["content"]) == {formats.JSON, formats.MSGPACK}
    assert {"200", "400", "413", "415", "422"} <= set(op["responses"])
    RE.subscribe(recorder)
    from bluesky.plans import count

    (uid,) = RE(count([det], num=2))
    pairs = [[name, doc] for name, doc in recorder]
    url = f"{served}/api/v1/documents/bmm/posted"
    r = httpx.post(url, content=packing.packb(pairs), headers={"content-type": formats.MSGPACK})
    assert r.status_code == 200 and r.json()["written"] == len(pairs)
    r = httpx.post(url, json=pairs)
    assert r.status_code == 200 and r.json()["duplicates"] == len(pairs)
    r = httpx.post(url, content=b"a,b", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and "415" in op["responses"]
    assert httpx.get(f"{served}/api/v1/metadata/bmm/posted/{uid}").status_code == 200


def test_api_key_is_described_when_the_server_has_one(catalog):
    with background_server(catalog, api_key="secret") as url:
        schema = httpx.get(url + "/openapi.json").json()  # the description needs no key
        assert httpx.get(url + "/docs").status_code == 200
        assert httpx.get(url + "/api/v1/metadata/").status_code == 401
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKeyHeader"]["name"] == "Authorization"
    assert schemes["apiKeyQuery"] == {"type": "apiKey", "in": "query", "name": "api_key"}
    for (method, path), route in openapi.ROUTES.items():
        op = schema["paths"][path][method]
        assert ("401" in op["responses"]) is not route.public, path
        assert bool(op.get("security")) is not route.public, path
    open_schema = create_app(catalog).openapi()
    assert "401" not in _op(open_schema, "/api/v1/metadata/{path}")["responses"]


def test_docs_work_offline(served):
    """/docs names no other host: Swagger UI's script, style and icon come from this server
    (from the swagger-ui-bundle package), and the online validator is off."""
    page = httpx.get(served + "/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
        r"url: '([^']+)'", page.text
    )
    assert len(urls) == 4, urls
    assert not re.search(r"(https?:)?//", page.text.replace("http://www.w3.org", ""))
    assert '"validatorUrl": null' in page.text
    kinds = {}
    for url in urls:
        assert url.startswith("/"), url
        r = httpx.get(served + url)
        assert r.status_code == 200, url
        kinds[url.rsplit(".", 1)[-1]] = r.headers["content-type"]
    assert kinds["js"].startswith("text/javascript") and kinds["css"].startswith("text/css")
    script = next(u for u in urls if u.endswith(".js"))
    assert "SwaggerUIBundle" in httpx.get(served + script).text  # the bundle itself
    assert httpx.get(served + "/openapi.json").json()["openapi"].startswith("3.1")


@pytest.mark.parametrize(
    "asset",
    ["index.html", "swagger-initializer.js", "..%2F..%2Fopenapi.py", "%2Fetc%2Fpasswd", ""],
)
def test_docs_assets_serve_only_the_page_files(served, asset):
    r = httpx.get(f"{served}/docs/assets/{asset}")
    assert r.status_code == 404 and set(r.json()) == {"detail"}
    assert httpx.get(served + "/redoc").status_code == 404  # it needs a CDN: not served


def test_live_route_answers_as_described(served, schema, beamline):
    """The Server-Sent Events route (left out of the schemathesis run: a stream never ends)
    answers with the media type and statuses its operation lists."""
    op = _op(schema, "/api/v1/stream/single/{path}")
    url = f"{served}/api/v1/stream/single"
    params = {"start": 1, "envelope_format": "msgpack"}  # SSE stays JSON, as documented
    with httpx.stream("GET", f"{url}/bmm/raw", params=params, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] in op["responses"]["200"]["content"]
        lines = r.iter_lines()
        assert next(lines) == "event: schema" and next(lines).startswith('data: {"type"')
    for path, params, headers, status in [
        ("bmm/raw", {"start": -1}, {}, 400),
        ("bmm/raw", {}, {"Last-Event-ID": "yesterday"}, 400),
        ("bmm/nowhere", {}, {}, 404),
    ]:
        r = httpx.get(f"{url}/{path}", params=params, headers=headers, timeout=30)
        assert r.status_code == status and str(status) in op["responses"], (path, params)
        assert set(r.json()) == {"detail"}
