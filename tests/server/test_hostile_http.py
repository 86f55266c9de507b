"""Hostile input on every HTTP route, against a live server on real RunEngine data, on both
backends: each mistake is a 4xx that says what to fix in one line and shows nothing of the
inside, no request stalls the server, every limit answers 413/414/400 with what to do
instead, a 500 is only an error id, the connection survives, and afterwards every stored
run reads back exactly as the RunEngine emitted it."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import numpy as np
import sqlalchemy as sa

from bluebroker.queries import Regex
from tests.compare import assert_run_matches

INSIDE = ("SELECT", "sqlalchemy", "psycopg", "sqlite3", "Traceback", 'File "', "[SQL")


def serve(catalog, **limits):
    """The app with ``limits`` (create_app keywords) on a real uvicorn server."""
    from bluebroker.server.run import background_server

    return background_server(catalog, **limits)


def _uids(beamline) -> list[str]:
    return [k for k in beamline if k != "frames"]


def _local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def assert_readable_4xx(r: httpx.Response, what, status: int | None = None, words: str = ""):
    assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:300])
    if status is not None:
        assert r.status_code == status, (what, r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 600, (what, detail)
    assert not any(word in detail for word in INSIDE), (what, detail)
    assert words in detail, (what, detail)


def assert_runs_intact(catalog, beamline) -> None:
    runs = catalog["bmm/raw"]
    assert len(runs) == len(_uids(beamline))
    for uid in _uids(beamline):
        assert_run_matches(runs[uid], beamline[uid])


def _f(query: str, field: str, value: str) -> tuple[str, str]:
    return (f"filter[{query}][condition][{field}]", value)


def _filters(uid: str) -> list[tuple[list, str]]:
    """(params, words in the detail) for /search: one per class of bad filter."""
    key = _f("eq", "key", '"sample"')
    return [
        ([key, _f("eq", "value", '"C\\u0000u"')], "NUL"),
        ([_f("eq", "key", '"sam\\u0000ple"'), _f("eq", "value", '"Cu"')], "NUL"),
        ([key, _f("eq", "value", '"\\ud800"')], "surrogate"),
        ([_f("eq", "key", '"\\udfff"'), _f("eq", "value", "1")], "surrogate"),
        ([key, _f("eq", "value", str(2**70))], "64 bits"),
        ([key, _f("eq", "value", "[" * 5000 + "]" * 5000)], "must be JSON"),
        ([key, _f("eq", "value", "[" * 40 + "]" * 40)], "too large"),
        ([key, _f("eq", "value", "Cu")], "must be JSON"),
        ([key], "needs the parameter 'value'"),
        ([key, _f("eq", "value", "1"), _f("eq", "bogus", "1")], "no parameter 'bogus'"),
        ([_f("eq", "key", '{"a": 1}'), _f("eq", "value", "1")], "non-empty string"),
        ([_f("eq", "key", '"' + "k" * 2000 + '"'), _f("eq", "value", "1")], "at most"),
        (
            [
                _f("comparison", "operator", '["lt"]'),
                _f("comparison", "key", '"scan_id"'),
                _f("comparison", "value", "1"),
            ],
            "operator",
        ),
        (
            [
                _f("comparison", "operator", '"lt"'),
                _f("comparison", "key", '"scan_id"'),
                _f("comparison", "value", str(-(2**64))),
            ],
            "64 bits",
        ),
        (
            [
                _f("comparison", "operator", '"lt"'),
                _f("comparison", "key", '"scan_id"'),
                _f("comparison", "value", '{"a": 1}'),
            ],
            "number or a string",
        ),
        ([_f("contains", "key", '"detectors"'), _f("contains", "value", str(2**65))], "64 bits"),
        ([_f("in", "key", '"scan_id"'), _f("in", "value", json.dumps(list(range(1001))))], "1000"),
        ([_f("in", "key", '"scan_id"'), _f("in", "value", '"x"')], "list"),
        ([_f("notin", "key", '"scan_id"'), _f("notin", "value", f"[{2**64}]")], "64 bits"),
        ([_f("fulltext", "text", "null")], "must be a string"),  # plain 5 is Tiled's text
        ([_f("fulltext", "text", '"Cu\\u0000"')], "NUL"),
        ([_f("fulltext", "text", '"..."')], "at least one word"),
        ([_f("regex", "key", '"sample"'), _f("regex", "pattern", '"(C)\\\\1"')], "RE2"),
        ([_f("regex", "key", '"sample"'), _f("regex", "pattern", '"[C"')], "RE2"),
        ([_f("regex", "key", '"sample"'), _f("regex", "pattern", '"(?=C)"')], "RE2"),
        ([_f("regex", "key", '"sample"'), _f("regex", "pattern", '"(.{1,200}){1,200}"')], "RE2"),
        ([_f("regex", "key", '"sample"'), _f("regex", "pattern", "null")], "must be a string"),
        (
            [
                _f("regex", "key", '"sample"'),
                _f("regex", "pattern", '"C"'),
                _f("regex", "case_sensitive", '"no"'),
            ],
            "true or false",
        ),
        (
            [_f("time_range", "since", '"2020-01-01"'), _f("time_range", "timezone", '"Mars/X"')],
            "unknown time zone",
        ),
        (
            [
                _f("time_range", "since", '"2020-01-01"'),
                _f("time_range", "timezone", '"../../etc/passwd"'),
            ],
            "unknown time zone",
        ),
        ([_f("time_range", "since", '"2020"'), _f("time_range", "timezone", "5")], "time zone"),
        ([_f("time_range", "since", '{"a": 1}')], "epoch seconds"),
        ([_f("time_range", "until", '"yesterday-ish"')], "cannot read"),
        ([_f("scan_id", "scan_ids", f"[{2**63}]")], "64-bit"),
        ([_f("scan_id", "scan_ids", '["1"]')], "64-bit"),
        ([_f("scan_id", "scan_ids", "[1]"), _f("scan_id", "duplicates", "nope")], "one of"),
        ([_f("scan_id", "scan_ids", "[1]"), _f("scan_id", "duplicates", '["all"]')], "one of"),
        ([_f("partial_uid", "partial_uids", '["\\u0000"]')], "NUL"),
        ([_f("partial_uid", "partial_uids", "[5]")], "non-empty strings"),
        ([_f("bogus", "key", '"x"')], "unknown query"),
        ([("filter[eq]", "1")], "malformed filter"),
        ([("sort", "\x00")], "NUL"),
        ([("sort", "-")], "non-empty string"),
        ([("sort", ",".join(["scan_id"] * 17))], "at most 16"),
        ([("page[offset]", "-1")], "page[offset]"),
        ([("page[offset]", str(2**70))], "page[offset] is at most"),
        ([("page[limit]", "301")], "page[limit]"),
        ([("page[limit]", "x")], "page[limit]"),
        ([("fields", "\x00")], "unknown fields"),
        ([("fields", "metadata,secrets")], "unknown fields"),
    ]


def test_hostile_parameters_are_readable_4xx(served, beamline, catalog):
    uids = _uids(beamline)
    uid, wave_uid = uids[0], uids[3]
    motor = f"/array/full/bmm/raw/{uid}/primary/data/motor"
    cam = f"/array/full/bmm/raw/{wave_uid}/primary/data/wave"  # a picture: 2 x 7
    table = f"/table/full/bmm/raw/{uid}/primary/data"
    cases = [("/search/bmm/raw", params, None, words) for params, words in _filters(uid)]
    cases += [
        ("/metadata/bmm/raw/%00", [], 404, "NUL"),
        ("/metadata/bm%00m/raw", [], 404, "NUL"),
        ("/metadata/bmm%0A", [], 404, "U+000A"),  # '$' matches before a final line break
        ("/search/bmm/raw%0A", [], 404, "control character"),
        (f"/array/full/bmm/raw/{uid}/primary/data/motor%0A", [], 404, "control character"),
        (f"/metadata/bmm/raw/{uid}/%00", [], 404, ""),
        (f"/metadata/bmm/raw/{uid}/primary/data/%00", [], 404, ""),
        ("/metadata/bmm/raw/%ED%A0%80", [], 404, ""),
        (f"/metadata/bmm/raw/{2**70}", [], 404, ""),
        (f"/metadata/bmm/raw/-{2**70}", [], 404, ""),
        ("/metadata/" + "/".join(["a"] * 300), [], 404, ""),
        (motor, [("slice", str(10**30))], 400, "19 digits"),
        (motor, [("slice", "9999999999999999999")], 400, "does not fit"),
        (motor, [("slice", f"::-{10**18}")], None, ""),  # fine: one element
        (motor, [("slice", ",".join(["0"] * 33))], 400, "at most 32"),
        (motor, [("slice", "...,...")], 400, "at most one"),
        (motor, [("slice", "...,0,0")], 400, "does not fit"),
        (motor, [("slice", "0:5:0")], 400, "zero"),
        (motor, [("slice", "\x00")], 400, "numpy syntax"),
        (motor, [("slice", "1e3")], 400, "numpy syntax"),
        (motor, [("format", "\x00")], 406, "is not available"),
        (motor, [("format", "gif")], 406, "image/png"),
        (cam, [("format", "png"), ("max_size", "0")], 400, "max_size"),
        (cam, [("format", "png"), ("max_size", "-5")], 400, "max_size"),
        (cam, [("format", "tiff"), ("max_size", str(2**70))], 400, "max_size"),
        (cam, [("format", "png"), ("max_size", "x")], 400, "max_size"),
        (motor.replace("full", "block"), [("block", str(2**70))], 400, "outside the chunks"),
        (motor.replace("full", "block"), [("block", "-1")], 400, "outside the chunks"),
        (motor.replace("full", "block"), [("block", "0,0")], 400, "outside the chunks"),
        (motor.replace("full", "block"), [("block", "a")], 400, "comma-separated"),
        (motor.replace("full", "block"), [], 400, "block"),
        (table, [("column", "\x00")], 400, "no columns"),
        (table, [("column", "nope")], 400, "no columns"),
        (table, [("fill", "\x00")], 400, "true or false"),
        (table, [("format", "yaml")], 406, "application/x-parquet"),
        (table.replace("full", "partition"), [("partition", str(2**70))], 400, "partition"),
        (table.replace("full", "partition"), [("partition", "x")], 400, "partition"),
        (f"/container/full/bmm/raw/{uid}", [("format", "\x00")], 406, "application/x-hdf5"),
        (f"/documents/bmm/raw/{uid}", [("format", "tar")], 406, "ndjson"),
        (f"/documents/bmm/raw/{uid}/primary", [], 400, "not a run"),
    ]
    headers_cases = [
        (motor, {"Accept": "text/x-nonsense"}, 406),
        (motor, {"Accept": "image/*;q=nan, foo/bar;q=x"}, None),
        (motor, {"Accept": b"\xe9/\xff"}, 406),
        (motor, {"Accept-Encoding": b"gzip\xff, \xe9"}, None),
        (motor, {"Accept-Encoding": "gzip;q=x, zstd;q=nan"}, None),
        (table, {"Accept": "application/json;q=0, */*"}, None),
    ]
    mixed = [None, True, [1, 2], {"a": [1]}, *range(500), *(f"s{i}" for i in range(492))]
    prefixes = [uid[:8], *(f"zz{i}" for i in range(999))]
    fine = [  # big but within the limits: answered, with the right runs
        # null matches a run without the key (the waveform run has no sample)
        (
            [_f("in", "key", '"sample"'), _f("in", "value", json.dumps([*mixed, "Cu"]))],
            [uid, uids[3]],
        ),
        ([_f("notin", "key", '"sample"'), _f("notin", "value", json.dumps(mixed))], uids[:3]),
        ([_f("partial_uid", "partial_uids", json.dumps(prefixes))], [uid]),
        ([_f("eq", "key", '"sample"'), _f("eq", "value", '{"a": [1, {"b": null}]}')], []),
        ([_f("contains", "key", '"detectors"'), _f("contains", "value", '{"a": 1}')], []),
        ([_f("contains", "key", '"detectors"'), _f("contains", "value", '"det1"')], uids[:2]),
        ([_f("eq", "key", '"sample"'), _f("eq", "value", '"Cu"')] * 64, [uid]),
    ]
    with httpx.Client(base_url=served + "/api/v1", timeout=30) as client:
        for params, expected in fine:
            r = client.get("/search/bmm/raw", params=params)
            assert r.status_code == 200, (params[:2], r.text[:300])
            assert [d["id"] for d in r.json()["data"]] == expected, params[:2]
        too_many = [_f("eq", "key", '"sample"'), _f("eq", "value", '"Cu"')] * 65
        assert_readable_4xx(client.get("/search/bmm/raw", params=too_many), "65", 400, "64")
        port = None
        for route, params, status, words in cases:
            r = client.get(route, params=params)
            if status is None and r.status_code == 200:
                continue
            assert_readable_4xx(r, (route[-40:], params[:3]), status, words)
            port = port or _local_port(r)
            assert _local_port(r) == port, "an error response closed the connection"
        for route, headers, status in headers_cases:
            r = client.get(route, headers=headers)
            assert r.status_code == (status or 200), (headers, r.text[:200])
    assert_runs_intact(catalog, beamline)


def test_hostile_posts(served, beamline, catalog):
    url = served + "/api/v1/documents"
    uid = _uids(beamline)[0]
    root_before = httpx.get(served + "/api/v1/search/").json()["meta"]["count"]
    start = dict(beamline[uid][0][1])
    json_ct = {"Content-Type": "application/json"}
    bodies = [
        ("new/raw", b"", json_ct, 400, "not valid"),
        ("new/raw", b"[" * 100_000 + b"]" * 100_000, json_ct, 400, "not valid"),
        ("new/raw", b"[" * 70 + b"]" * 70, json_ct, 400, "deeper than 64"),
        (
            "new/raw",
            b"\x91" * 100_000 + b"\x90",
            {"Content-Type": "application/x-msgpack"},
            400,
            "",
        ),
        (
            "new/raw",
            b'[["start", {"uid": "s", "time": 1, "x": 1e1000000000000}]]',
            json_ct,
            None,
            "",
        ),
        (
            "new/raw",
            json.dumps([["start", {"uid": "s", "time": 1, "x": 10**30}]]).encode(),
            json_ct,
            400,
            "64 bits",
        ),
        (
            "new/raw",
            b'[["start", {"uid": "s", "time": 1, "x": "\\ud800"}]]',
            json_ct,
            400,
            "Unicode",
        ),
        ("new/raw", b'[["start", {"uid": "s", "time": 1, "\\udc80": 1}]]', json_ct, 400, "Unicode"),
        ("new/raw", b"\xff\xfe", json_ct, 400, "not valid"),
        ("new/raw", b'{"a": 1}', json_ct, 400, "[name, doc] pair"),
        ("new/raw", b"null", json_ct, 400, "[name, doc] pair"),
        ("new/raw", b"[]", {"Content-Type": "text/plain"}, 415, "application/json"),
        ("new/raw", b"[[1, 2]]", json_ct, 422, ""),
        ("new/raw", b'[["start", 5]]', json_ct, 422, ""),
        ("new/raw", b'[["nothing", {}]]', json_ct, 422, ""),
        ("/".join(["a"] * 100), b"[]", json_ct, 400, "at most 8 segments"),
        ("x" * 65 + "/raw", b"[]", json_ct, 400, "at most 64 characters"),
        ("bmm/%00", b"[]", json_ct, 400, "NUL"),
        ("bmm/raw%0A", json.dumps([["start", start]]).encode(), json_ct, 400, "U+000A"),
        ("bmm/raw%09x", b"[]", json_ct, 400, "control character"),
        ("bmm/r%20aw", b"[]", json_ct, 400, "invalid catalog path"),
        ("bmm/.hidden", b"[]", json_ct, 400, "invalid catalog path"),
        ("bmm", json.dumps([["start", start]]).encode(), json_ct, 400, "overlaps"),
        ("empty/raw", b"[]", json_ct, None, ""),
    ]
    with httpx.Client(timeout=30) as client:
        for path, body, headers, status, words in bodies:
            r = client.post(f"{url}/{path}", content=body, headers=headers)
            if status is None:
                assert r.status_code in (200, 422), (path, body[:40], r.text[:200])
                continue
            assert r.status_code == status, (path, body[:40], r.status_code, r.text[:300])
            if status != 422:
                assert_readable_4xx(r, (path[:40], body[:40]), status, words)
    listing = httpx.get(served + "/api/v1/search/")
    assert listing.status_code == 200, listing.text[:300]
    names = [d["id"] for d in listing.json()["data"]]
    assert "empty" not in names and "a" not in names, names  # an empty POST makes no catalog
    assert listing.json()["meta"]["count"] <= root_before + 1  # only new/raw may have appeared
    assert_runs_intact(catalog, beamline)


def test_regex_search_is_linear_time(served, RE, catalog):
    """``^(a|a)*$`` backtracks exponentially in Python's re: 40 a's and a '!' used to hold
    the interpreter lock, and so every request, for hours."""
    from bluesky import plans as bp
    from ophyd.sim import det1

    from bluebroker.ingest import CatalogWriter

    RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    (uid,) = RE(bp.count([det1]), sample="a" * 40 + "!")
    (other,) = RE(bp.count([det1]), sample="aaaa")
    params = [_f("regex", "key", '"sample"'), _f("regex", "pattern", '"^(a|a)*$"')]
    results: dict[str, httpx.Response] = {}

    def search() -> None:
        results["search"] = httpx.get(served + "/api/v1/search/bmm/raw", params=params, timeout=60)

    began = time.monotonic()
    thread = threading.Thread(target=search)
    thread.start()
    other_request = httpx.get(served + f"/api/v1/metadata/bmm/raw/{uid}", timeout=60)
    thread.join(timeout=60)
    assert other_request.status_code == 200
    assert time.monotonic() - began < 10
    found = results["search"]
    assert found.status_code == 200, found.text[:300]
    assert [d["id"] for d in found.json()["data"]] == [other]
    insensitive = [
        _f("regex", "key", '"sample"'),
        _f("regex", "pattern", '"^A+!$"'),
        _f("regex", "case_sensitive", "false"),
    ]
    r = httpx.get(served + "/api/v1/search/bmm/raw", params=insensitive)
    assert [d["id"] for d in r.json()["data"]] == [uid]


def _fill(catalog, path: str, rows: int) -> None:
    """``rows`` bare run rows in a new catalog, written in SQL (a big catalog in a second)."""
    from bluebroker.catalog.schema import catalogs, runs

    catalog_id = catalog.create_catalog(path).catalog_id
    with catalog.engine.begin() as conn:
        for first in range(0, rows, 10_000):
            conn.execute(
                sa.insert(runs),
                [
                    {
                        "catalog_id": catalog_id,
                        "uid": f"filler-{i:08d}",
                        "time": float(i),
                        "scan_id": i,
                        "start": {"uid": f"filler-{i:08d}", "time": i, "sample": f"s{i} " * 8},
                        "summary": {},
                        "text": "",
                        "start_digest": b"\0" * 16,
                    }
                    for i in range(first, min(rows, first + 10_000))
                ],
            )
        conn.execute(sa.update(catalogs).where(catalogs.c.id == catalog_id).values(num_runs=rows))


def test_search_time_limit(catalog):
    """A search past ``search_timeout`` is stopped in the database: a 503 saying what to do,
    and the server goes on serving."""
    _fill(catalog, "big/raw", 60_000)
    slow = [_f("regex", "key", '"sample"'), _f("regex", "pattern", '"s1.*s2.*s3.*9$"')]
    with serve(catalog, search_timeout=0.005) as url, httpx.Client(timeout=60) as client:
        began = time.monotonic()
        r = client.get(url + "/api/v1/search/big/raw", params=slow)
        assert time.monotonic() - began < 10
        assert r.status_code == 503, r.text[:300]
        assert "stopped after 0.005 s" in r.json()["detail"]
        assert client.get(url + "/api/v1/").status_code == 200  # still serving
    catalog.search_timeout = 10.0  # create_app set it on the catalog
    found = catalog["big/raw"].search(Regex("sample", "^s7 s7 "))
    assert found.keys_range(0, 2) == ["filler-00000007"]  # the default limit lets it finish


def test_body_and_url_limits(catalog, beamline):
    limit = 256 * 1024
    with serve(catalog, max_body_bytes=limit, max_url_bytes=4096) as url:
        post = url + "/api/v1/documents/new/raw"
        big = b"[" + b'"x",' * limit + b'"x"]'
        r = httpx.post(post, content=big, headers={"Content-Type": "application/json"})
        assert_readable_4xx(r, "declared", 413, "smaller batches")
        sent = []

        def chunks():  # no Content-Length: the limit is counted as the body streams in
            for _ in range(64):
                sent.append(1)
                yield b" " * 16384

        try:
            r = httpx.post(post, content=chunks(), headers={"Content-Type": "application/json"})
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            r = None  # the server answered and closed while the client still sent: also fine
        if r is not None:
            assert_readable_4xx(r, "chunked", 413, "smaller batches")
        long_url = url + "/api/v1/search/bmm/raw?sort=" + "x" * 5000
        assert_readable_4xx(httpx.get(long_url), "url", 414, "fewer or shorter")
        ok = httpx.get(url + "/api/v1/search/bmm/raw")
        assert ok.status_code == 200 and ok.json()["meta"]["count"] == len(_uids(beamline))
    assert_runs_intact(catalog, beamline)


def test_full_reads_over_the_limit(catalog, beamline):
    uid, wave_uid = _uids(beamline)[0], _uids(beamline)[3]
    with serve(catalog, max_read_bytes=100, max_image_size=64) as url:
        api = url + "/api/v1"
        wave = f"{api}/array/full/bmm/raw/{wave_uid}/primary/data/wave"  # 2 x 7 floats
        assert_readable_4xx(httpx.get(wave), "wave", 413, "slice it")
        assert httpx.get(wave, params={"slice": "0"}).json() == list(np.linspace(0, 1, 7))
        motor = f"{api}/array/full/bmm/raw/{uid}/primary/data/motor"  # 11 floats
        assert len(httpx.get(motor, params={"format": "json"}).json()) == 11
        table = f"{api}/table/full/bmm/raw/{uid}/primary/data"
        assert_readable_4xx(httpx.get(table), "table", 413, "fewer columns")
        assert httpx.get(table, params={"column": "det1"}).status_code == 200
        assert_readable_4xx(httpx.get(f"{api}/container/full/bmm/raw/{uid}"), "run", 413, "streams")
        png = httpx.get(wave, params={"slice": "0", "format": "png", "max_size": 65})
        assert_readable_4xx(png, "max_size", 400, "1 to 64")
        small = httpx.get(wave, params={"slice": "0:1", "format": "png", "max_size": 3})
        assert small.status_code == 200 and small.headers["content-type"] == "image/png"


def test_internal_error_is_an_id_and_keeps_the_connection(served, beamline, monkeypatch, caplog):
    from bluebroker.catalog import RunCatalog

    def broken(self):
        raise RuntimeError("SELECT secret FROM runs WHERE password = 'hunter2'")

    monkeypatch.setattr(RunCatalog, "__len__", broken)
    caplog.set_level(logging.ERROR)
    with httpx.Client(base_url=served + "/api/v1") as client:
        r = client.get("/search/bmm/raw")
        assert r.status_code == 500
        detail = r.json()["detail"]
        assert "secret" not in detail and "SELECT" not in detail and "RuntimeError" not in detail
        error_id = detail.split()[2].rstrip(";")
        assert detail.startswith("internal error ") and len(error_id) == 12
        logged = [rec for rec in caplog.records if error_id in rec.getMessage()]
        assert logged and "hunter2" in str(logged[0].exc_info[1])
        again = client.get(f"/metadata/bmm/raw/{_uids(beamline)[0]}")
        assert again.status_code == 200
        assert _local_port(again) == _local_port(r), "the 500 closed the connection"
