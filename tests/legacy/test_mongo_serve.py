"""A legacy MongoDB database served in place (``serve --mount csx=mongodb://...``): real
RunEngine runs written by suitcase-mongo into the mongo_normalized layout on a real
MongoDB-protocol server, read back through the catalog's nodes, over HTTP with our client,
through the databroker facade, and searched, without any migration."""

from __future__ import annotations

import re

import numpy as np
import pytest

from .compare_legacy import assert_migrated


def spec(db, **options) -> str:
    """The mount spec of a legacy database pair: metadatastore URI, assets= its database."""
    base, _, query = db.mds_uri.partition("?")
    parts = [query] if query else []
    parts += [f"assets={db.assets.name}", *(f"{k}={v}" for k, v in options.items())]
    return base + "?" + "&".join(parts)


@pytest.fixture
def mounted(legacy_runs, tmp_path):
    """A SQLite catalog with the legacy database mounted at /csx (files under tmp_path)."""
    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo

    cat = open_catalog(f"sqlite:///{tmp_path}/catalog.db", data_roots=[tmp_path])
    source = mount_mongo(cat, "csx", spec(legacy_runs["db"]))
    yield cat
    source.close()
    cat.close()


def _uid(docs) -> str:
    return next(d["uid"] for n, d in docs if n == "start")


def test_every_run_reads_as_emitted_through_the_nodes(legacy_runs, mounted):
    runs = mounted["csx"]
    assert len(runs) == 4
    assert list(runs) == [_uid(docs) for docs in legacy_runs["runs"]]  # oldest first
    for docs in legacy_runs["runs"]:
        assert_migrated(runs[_uid(docs)], docs)
    frames = legacy_runs["frames"]
    fe = runs[_uid(legacy_runs["runs"][1])]
    np.testing.assert_array_equal(fe["primary"]["data"]["cam"].read(), frames[:4])
    np.testing.assert_array_equal(fe["primary"]["data"]["cam"][1:3], frames[1:3])
    # a slice asks MongoDB for its rows only, and for the fields asked for only
    rows = runs[_uid(legacy_runs["runs"][0])]["primary"].events(["data.det1"], 3, 7)
    assert [r["seq_num"] for r in rows] == [4, 5, 6, 7]
    assert set(rows[0]) == {"seq_num", "time", "data"} and list(rows[0]["data"]) == ["det1"]
    old = runs[_uid(legacy_runs["runs"][3])]
    assert list(old) == ["primary"] and old.metadata["stop"] is None
    assert old.metadata["start"]["acquired"] == "2017-03-04T05:06:07.890000"
    np.testing.assert_array_equal(old["primary"]["data"]["cam"].read(), frames[4:])



def test_assets_elsewhere_and_root_map_in_the_spec(legacy_runs, mounted, tmp_path):
    """``assets=`` as a whole (percent-encoded) URI, and ``root_map=OLD=NEW`` for files
    that moved since the resources were written."""
    import shutil
    from urllib.parse import quote

    from bluebroker.catalog.mongo import mount_mongo

    db = legacy_runs["db"]
    moved = tmp_path / "moved"
    moved.mkdir()
    for h5 in tmp_path.glob("cam_*.h5"):
        shutil.move(h5, moved / h5.name)
    docs = legacy_runs["runs"][1]
    root = next(d["root"] for n, d in docs if n == "resource")
    base, _, query = db.mds_uri.partition("?")
    spec = f"{base}?{query}&assets={quote(db.assets_uri, safe='')}"
    spec += f"&root_map={quote(root + '=' + str(moved), safe='')}"
    source = mount_mongo(mounted, "moved", spec)
    try:
        cam = mounted.node(f"moved/{_uid(docs)}/primary/data/cam")
        np.testing.assert_array_equal(cam.read(), legacy_runs["frames"][:4])
        run = mounted.node(f"moved/{_uid(docs)}")
        (resource,) = [d for n, d in run.documents() if n == "resource"]
        assert resource["root"] == str(moved)
    finally:
        source.close()


def test_the_access_policy_is_a_mongo_filter(legacy_runs, mounted):
    from bluebroker.catalog import NotFound
    from bluebroker.catalog.access import Access, Grant, reading_as
    from bluebroker.queries import Eq

    uids = [_uid(docs) for docs in legacy_runs["runs"]]
    with reading_as(Access((Grant(queries=(Eq("sample", "Fe"),)),))):
        runs = mounted["csx"]
        assert list(runs) == [uids[1]] and len(runs) == 1 and runs[-1].uid == uids[1]
        for hidden in (f"csx/{uids[0]}", f"csx/{uids[2][:12]}", f"csx/{uids[3]}/primary"):
            with pytest.raises(NotFound):
                mounted.node(hidden)
    with reading_as(Access((Grant(catalogs=("bmm",)),))):
        assert len(mounted["csx"]) == 0 and list(mounted["csx"]) == []
    with reading_as(Access((Grant(catalogs=("csx",)),))):
        assert len(mounted["csx"]) == 4


@pytest.fixture
def serving(legacy_runs, tmp_path):
    """``bluebroker serve`` with only the legacy database mounted at /csx: its URL."""
    from tests.processes import Running, free_port, wait_until_answering

    server = Running(
        "serve",
        *("--port", str(free_port()), "--catalog", f"sqlite:///{tmp_path}/empty.db"),
        *("--data-root", str(tmp_path), "--mount", f"csx={spec(legacy_runs['db'])}"),
    )
    try:
        mounted = server.wait_for(" at /csx")
        assert "about 4 runs" in mounted and "no change notices" in mounted
        url = server.wait_for("serving ").split(" at ")[1].split()[0]
        wait_until_answering(url)
        yield url
    finally:
        server.interrupt()
        server.finish()
        server.close()


def test_served_runs_read_back_equal_over_http(legacy_runs, serving):
    from bluebroker.client import from_uri
    from tests.compare import same
    from tests.conftest import TEST_KEY

    from .compare_legacy import logical

    runs = from_uri(serving, api_key=TEST_KEY)["csx"]
    assert len(runs) == 4
    scan, fe, wave, old = (runs[_uid(docs)] for docs in legacy_runs["runs"])
    docs = legacy_runs["runs"][0]
    start = next(d for n, d in docs if n == "start")
    stop = next(d for n, d in docs if n == "stop")
    assert same(scan.metadata["start"], start) and same(scan.metadata["stop"], stop)
    assert sorted(scan.metadata["summary"]["stream_names"]) == ["baseline", "primary"]
    assert scan.metadata["summary"]["num_events"] == stop["num_events"]
    events = [d for n, d in docs if n == "event" and d["descriptor"] == _primary(docs)]
    det1 = np.array([e["data"]["det1"] for e in events])
    data = scan["primary"]["data"]
    np.testing.assert_array_equal(data["det1"][:], det1)
    np.testing.assert_array_equal(data["det1"][3:7], det1[3:7])
    np.testing.assert_array_equal(data["det1"][-2:], det1[-2:])
    table = data.read()
    assert list(table.index) == [e["seq_num"] for e in events]
    np.testing.assert_array_equal(table["motor"], [e["data"]["motor"] for e in events])
    frames = legacy_runs["frames"]
    np.testing.assert_array_equal(fe["primary"]["data"]["cam"][2:4], frames[2:4])
    np.testing.assert_array_equal(old["primary"]["data"]["cam"][:], frames[4:])
    np.testing.assert_array_equal(
        wave["primary"]["data"]["wave"][:], [np.linspace(0, 1, 7)] * 2
    )
    stored, emitted = logical(scan.documents()), logical(docs)
    assert stored.keys() == emitted.keys()
    assert all(same(stored[k][i], emitted[k][i]) for k in emitted for i in emitted[k])


def test_tiled_client_reads_a_served_mongo_database(legacy_runs, mounted):
    from tiled.client import from_uri

    from bluebroker.server.run import background_server

    docs = legacy_runs["runs"][0]
    events = [d for n, d in docs if n == "event" and d["descriptor"] == _primary(docs)]
    with background_server(mounted) as url:
        runs = from_uri(url)["csx"]
        assert len(runs) == 4
        run = runs[_uid(docs)]
        ds = run["primary"].read()
        np.testing.assert_array_equal(ds["det1"].to_numpy(), [e["data"]["det1"] for e in events])
        assert run.metadata["start"]["sample"] == "Cu"
        cam = runs[_uid(legacy_runs["runs"][1])]["primary"]["data"]["cam"]
        # Tiled's client sees TiledWriter's shape: each event's frames (one per point here) on
        # an axis of their own; our client and the facade keep the event-model shape.
        np.testing.assert_array_equal(cam.read(), legacy_runs["frames"][:4][:, np.newaxis])


def _primary(docs) -> str:
    return next(d["uid"] for n, d in docs if n == "descriptor" and d.get("name") == "primary")


def test_served_runs_are_searched_in_mongo(legacy_runs, serving):
    import httpx

    from bluebroker.client import from_uri
    from bluebroker.queries import Comparison, FullText, Key, Regex, TimeRange
    from tests.conftest import TEST_KEY

    uids = [_uid(docs) for docs in legacy_runs["runs"]]
    starts = [docs[0][1] for docs in legacy_runs["runs"]]
    runs = from_uri(serving, api_key=TEST_KEY)["csx"]
    assert list(runs.search(Key("sample") == "Fe")) == [uids[1]]
    assert list(runs.search(Key("sample") != "Fe")) == [uids[0], uids[2], uids[3]]
    assert list(runs.search(Regex("sample", "^(cu|si)$", case_sensitive=False))) == [
        uids[0],
        uids[2],
    ]
    assert list(runs.search(Key("plan_name") == "count").search(Key("sample") == "old")) == [
        uids[3]
    ]
    assert list(runs.search(Comparison("ge", "time", starts[2]["time"]))) == uids[2:]
    assert list(runs.search(TimeRange(until=starts[1]["time"]))) == uids[:1]
    assert list(runs.search(Key("stop.exit_status") == "success")) == uids[:3]
    assert list(runs.search({"num_points": {"$gte": 11}})) == uids[:1]
    assert runs[-1].metadata["start"]["uid"] == uids[3]
    assert runs[uids[2][:10]].metadata["start"]["uid"] == uids[2]
    newest_first = runs.sort(("time", -1))
    assert list(newest_first) == uids[::-1]
    headers = {"Authorization": f"Apikey {TEST_KEY}"}
    page = httpx.get(
        f"{serving}/api/v1/search/csx",
        params={"page[offset]": 1, "page[limit]": 2, "fields": "metadata"},
        headers=headers,
    ).json()
    assert [d["id"] for d in page["data"]] == uids[1:3] and page["meta"]["count"] == 4
    # no text index on the test server: the documents are read (test_mongo_fulltext.py)
    assert list(runs.search(FullText("Cu"))) == [uids[0]]


def test_the_databroker_facade_reads_a_served_mongo_database(legacy_runs, serving):
    from databroker import Broker
    from tests.conftest import TEST_KEY

    db = Broker.from_config({"uri": serving, "catalog": "csx", "api_key": TEST_KEY})
    docs = legacy_runs["runs"][0]
    header = db[_uid(docs)]
    events = [d for n, d in docs if n == "event" and d["descriptor"] == _primary(docs)]
    table = header.table()
    np.testing.assert_array_equal(table["det2"], [e["data"]["det2"] for e in events])
    assert header.start["sample"] == "Cu" and header.stop["exit_status"] == "success"
    assert db[-1].start["uid"] == _uid(legacy_runs["runs"][3])
    (fe,) = db(sample="Fe")
    frames = np.stack(list(fe.data("cam")))
    np.testing.assert_array_equal(frames, legacy_runs["frames"][:4])
    found = db(plan_name="count", sample={"$in": ["Si", "old"]})
    assert sorted(h.start["uid"] for h in found) == sorted(
        _uid(legacy_runs["runs"][i]) for i in (2, 3)
    )


def test_a_mongo_source_is_read_only_and_not_live(legacy_runs, serving):
    import httpx
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from tests.conftest import TEST_KEY

    headers = {"Authorization": f"Apikey {TEST_KEY}"}
    uid = _uid(legacy_runs["runs"][0])
    for path in ("csx", f"csx/{uid}", f"csx/{uid}/primary/data/det1"):
        got = httpx.get(
            f"{serving}/api/v1/stream/single/{path}",
            headers={**headers, "Accept": "text/event-stream"},
        )
        assert got.status_code == 400, got.text
        assert "sends no change notices" in got.json()["detail"]
    ws_url = serving.replace("http://", "ws://") + "/api/v1/stream/single/csx"
    with connect(ws_url, additional_headers=headers) as ws, pytest.raises(ConnectionClosed) as err:
        while True:
            ws.recv(timeout=30)
    assert err.value.rcvd.code == 4400 and "no change notices" in err.value.rcvd.reason
    posted = httpx.post(
        f"{serving}/api/v1/documents/csx/raw",
        json=[["start", {"uid": "x" * 8, "time": 1.0}]],
        headers=headers,
    )
    assert posted.status_code == 400 and "read-only" in posted.json()["detail"], posted.text


def test_a_bad_mount_is_one_line_at_start(legacy_db, tmp_path):
    from bluebroker.catalog import CatalogError
    from bluebroker.directory.serving import check_folders
    from tests.processes import free_port, run
    from tests.test_cli import assert_one_line

    base = legacy_db.mds_uri.partition("?")[0]
    server = base.rsplit("/", 1)[0]
    cases = [
        ("csx=mongodb://127.0.0.1:27017", "must name the metadatastore database"),
        ("csx=ftp://host/db", "--mount takes NAME=directory:PATH or NAME=mongodb://"),
        (f"c/x={base}", "must be letters, digits"),
        (f"csx={base}?root_map=/only-old", "root_map= takes OLD=NEW"),
        (f"csx={base}?assets=a/b", "is neither a database name nor a mongodb:// URI"),
        (f"csx={server}/{legacy_db.assets.name}", "has no run_start collection"),
    ]
    for mount, words in cases:
        with pytest.raises(CatalogError, match=re.escape(words)):
            check_folders([], [mount], False)
    with pytest.raises(CatalogError, match="--watch watches served folders"):
        check_folders([], [f"csx={spec(legacy_db)}"], True)
    with pytest.raises(CatalogError, match="each mount needs its own name"):
        check_folders([], [f"csx={spec(legacy_db)}", f"csx=directory:{tmp_path}"], False)
    # the command itself: one line, before any catalog is created
    catalog = ("--catalog", f"sqlite:///{tmp_path}/c.db", "--port", str(free_port()))
    away = f"csx=mongodb://127.0.0.1:{free_port()}/mds"
    assert_one_line(run("serve", *catalog, "--mount", away), 2, "cannot reach the MongoDB server")
    assert_one_line(run("serve", *catalog, "--mount", cases[0][0]), 2, cases[0][1])
    assert not (tmp_path / "c.db").exists()


def test_a_mongo_server_that_goes_away_is_a_503(tmp_path):
    """Started with its database reachable, the server answers 503 (try again) while
    MongoDB is away, and serves again when it is back."""
    import httpx
    import pymongo

    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo
    from bluebroker.server.run import background_server

    from .mongo_server import ENV, mongo_server, with_database

    if __import__("os").environ.get(ENV):
        pytest.skip(f"cannot stop the MongoDB server that {ENV} names")
    cat = open_catalog(f"sqlite:///{tmp_path}/c.db")
    with mongo_server(tmp_path / "mongo") as uri:
        client = pymongo.MongoClient(uri)
        client["mds"]["run_start"].insert_one({"uid": "a" * 36, "time": 1.5e9, "scan_id": 1})
        client.close()
        source = mount_mongo(cat, "csx", with_database(uri, "mds"))
        with background_server(cat) as url:
            assert httpx.get(f"{url}/api/v1/search/csx").json()["meta"]["count"] == 1
    with background_server(cat) as url:
        got = httpx.get(f"{url}/api/v1/search/csx", timeout=60)
        assert got.status_code == 503, got.text
        assert got.json()["detail"] == (
            "the MongoDB server behind /csx is not answering; try again later"
        )
    source.close()
    cat.close()


def test_every_route_answers_for_mongo_nodes(legacy_runs, mounted):
    """Exports, formats, blocks, unfilled tables and documents of Mongo nodes: answers, and a
    mistake is a 4xx that says so, never a 500."""
    import httpx

    from bluebroker.server.run import background_server

    scan, fe = (_uid(legacy_runs["runs"][i]) for i in (0, 1))
    datum_ids = [
        d["data"]["cam"] for n, d in legacy_runs["runs"][1] if n == "event" and "cam" in d["data"]
    ]
    with background_server(mounted) as url:
        api = f"{url}/api/v1"
        ok = [
            f"metadata/csx/{scan}/primary",
            f"metadata/csx/{fe}/primary/data/cam",
            f"search/csx/{scan}",
            f"container/full/csx/{scan}/primary?format=application/x-netcdf",
            f"container/full/csx/{scan}?format=application/x-hdf5",
            f"table/full/csx/{scan}/primary/data?format=text/csv",
            f"table/full/csx/{scan}/baseline/timestamps",
            f"table/full/csx/{scan}/primary/config/det1",
            f"array/block/csx/{fe}/primary/data/cam?block=0,0,0",
            f"array/full/csx/{scan}/primary/data/time?slice=1:3",
            f"documents/csx/{fe}",
            "metadata/csx",
            "metadata/",
        ]
        for route in ok:
            got = httpx.get(f"{api}/{route}", timeout=60)
            assert got.status_code == 200, (route, got.text)
        unfilled = httpx.get(f"{api}/table/full/csx/{fe}/primary/data?fill=false&column=cam")
        assert [row["cam"] for row in unfilled.json()] == datum_ids
        bad = {
            f"array/full/csx/{scan}/primary/data/det1?slice=0:2:0": 400,
            f"table/full/csx/{scan}/primary/data?column=nope": 400,
            f"metadata/csx/{scan}/nope": 404,
            "metadata/csx/0000": 404,
            "search/csx?sort=-nope": 400,
            "search/csx?sort=summary.duration": 400,
            "search/csx?filter[eq][condition][key]=summary.duration"
            "&filter[eq][condition][value]=1": 400,
        }
        for route, status in bad.items():
            got = httpx.get(f"{api}/{route}")
            assert got.status_code == status, (route, got.text)
            assert "internal error" not in got.text
