"""Opening bluebroker with Tiled's client: from_uri (with and without an API key), the root's
description, listing and reprs, the catalog of runs and its lookups, len(), paging."""

from __future__ import annotations

import httpx
import msgpack
import pytest
from bluesky_tiled_plugins.clients.bluesky_run import BlueskyRunV2Mongo
from bluesky_tiled_plugins.clients.catalog_of_bluesky_runs import CatalogOfBlueskyRuns
from tiled.client import from_uri
from tiled.client.container import Container
from tiled.queries import Key

from .conftest import plain, starts


def test_from_uri_lists_and_reprs(tiled, beamline):
    assert isinstance(tiled, Container)
    assert list(tiled) == ["bmm"] and "bmm" in repr(tiled)
    assert list(tiled["bmm"]) == ["raw"]
    raw = tiled["bmm"]["raw"]
    assert isinstance(raw, CatalogOfBlueskyRuns)
    runs = starts(beamline)
    assert len(raw) == len(runs)
    assert list(raw) == list(runs)  # oldest first, as the catalog sorts by start.time
    # The catalog's repr shows scan_ids, as Tiled's does for TiledWriter's catalogs.
    assert repr(raw) == "<Catalog {" + ", ".join(str(s["scan_id"]) for s in runs.values()) + "}>"


def test_runs_by_index_scan_id_uid_and_path(tiled, beamline):
    runs = starts(beamline)
    uids = list(runs)
    raw = tiled["bmm"]["raw"]
    newest = raw[-1]
    assert isinstance(newest, BlueskyRunV2Mongo)
    assert newest.metadata["start"]["uid"] == uids[-1]
    assert raw.values().last().metadata["start"]["uid"] == uids[-1]
    assert raw[-2].metadata["start"]["uid"] == uids[-2]
    second = runs[uids[1]]
    assert raw[second["scan_id"]].metadata["start"]["uid"] == uids[1]
    assert raw[uids[2][:8]].metadata["start"]["uid"] == uids[2]
    assert raw[uids[0]].metadata["start"] == plain(runs[uids[0]])
    by_path = tiled[f"bmm/raw/{uids[1]}"]  # one request from the root, not a list of runs
    assert isinstance(by_path, BlueskyRunV2Mongo)
    assert by_path.metadata["start"]["uid"] == uids[1]
    assert by_path.metadata["stop"]["exit_status"] == "success"
    text = repr(by_path)
    assert text.startswith("<BlueskyRun v2.0 ") and f"scan_id={second['scan_id']}" in text
    assert f"uid='{uids[1][:8]}'" in text
    stream = by_path["primary"]
    assert set(stream) == {"data", "timestamps", "config"}
    assert repr(stream).startswith("<BlueskyEventStream {")
    assert repr(stream).endswith("} stream_name='primary'>")
    with pytest.raises(KeyError):
        raw[987654]  # no such scan_id
    with pytest.raises(KeyError):
        raw["fffffffff"]  # no such uid prefix


def test_api_key(beamline, catalog):
    """Tiled's client sends only keys made of letters, digits and '_' (its header pattern
    is ``Apikey (\\w+)``); others it drops silently."""
    from bluebroker.server.run import background_server

    with background_server(catalog, api_key="secret_for_tiled_0123") as url:
        with pytest.raises(RuntimeError, match="API key"):
            from_uri(url)  # Tiled's client sees that a key is needed, and says so
        c = from_uri(url, api_key="secret_for_tiled_0123")
        assert len(c["bmm"]["raw"]) == len(starts(beamline))
        with pytest.raises(httpx.HTTPStatusError) as err:
            from_uri(url, api_key="wrong")
        assert err.value.response.status_code == 401


def test_about_in_tiled_shape(tiled_url):
    from tiled.schemas import About

    about = httpx.get(tiled_url + "/api/v1/", headers={"Accept": "application/x-msgpack"})
    assert about.headers["content-type"] == "application/x-msgpack"
    info = About.model_validate(msgpack.unpackb(about.content))
    assert "csv" in info.aliases["table"]["text/csv"]
    assert "arrow" in info.aliases["table"]["application/vnd.apache.arrow.file"]
    assert info.authentication.providers == [] and not info.authentication.required
    assert "lookup" in info.queries


def test_metadata_msgpack_equals_json(tiled_url, beamline):
    uid = next(iter(starts(beamline)))
    url = f"{tiled_url}/api/v1/metadata/bmm/raw/{uid}/primary/data"
    as_json = httpx.get(url).json()
    packed = httpx.get(url, headers={"Accept": "application/x-msgpack"})
    assert packed.headers["content-type"] == "application/x-msgpack"
    assert msgpack.unpackb(packed.content) == as_json
    specs = httpx.get(f"{tiled_url}/api/v1/metadata/bmm/raw/{uid}").json()["data"]
    assert specs["attributes"]["specs"] == [{"name": "BlueskyRun", "version": "1"}]


def test_our_client_keeps_inlined_contents(tiled_url):
    """Our client (and curl) still get the containers above the runs inlined: its chain to a
    slice stays four requests. Tiled's client, or max_depth=0, gets them without."""
    root = httpx.get(tiled_url + "/api/v1/metadata/").json()["data"]
    assert (
        "raw"
        in root["attributes"]["structure"]["contents"]["bmm"]["attributes"]["structure"]["contents"]
    )
    tiled_ua = {"User-Agent": "python-tiled/0.2.20"}
    for kwargs in ({"headers": tiled_ua}, {"params": {"max_depth": 0}}):
        bare = httpx.get(tiled_url + "/api/v1/metadata/", **kwargs).json()["data"]
        assert bare["attributes"]["structure"] == {"count": 1, "contents": None}
    bad = httpx.get(tiled_url + "/api/v1/metadata/", params={"max_depth": "deep"})
    assert bad.status_code == 400 and "max_depth" in bad.json()["detail"]


def test_stream_tables_as_datasets_for_tiled_only(tiled_url, beamline):
    """A stream's data is a table for our client and an xarray dataset for Tiled's, whose
    wide-table read takes named variables and refuses unknown ones with a 400."""
    uid = next(iter(starts(beamline)))
    url = f"{tiled_url}/api/v1/metadata/bmm/raw/{uid}/primary/data"
    ours = httpx.get(url).json()["data"]["attributes"]
    assert ours["structure_family"] == "table" and ours["specs"] == []
    tiled_ua = {"User-Agent": "python-tiled/0.2.20"}
    theirs = httpx.get(url, headers=tiled_ua).json()["data"]
    assert theirs["attributes"]["structure_family"] == "container"
    assert theirs["attributes"]["specs"] == [{"name": "xarray_dataset", "version": None}]
    time_spec = theirs["attributes"]["structure"]["contents"]["time"]["attributes"]["specs"]
    assert time_spec == [{"name": "xarray_coord", "version": None}]
    full = theirs["links"]["full"]
    bad = httpx.get(full, params={"format": "arrow", "field": ["det1", "nope"]})
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]


def test_paging_through_thousands_of_runs(catalog):
    """2,500 runs: len(), iteration page by page, the newest and a run deep in the middle."""
    from bluebroker.ingest import CatalogWriter
    from bluebroker.server.run import background_server

    n = 2500
    docs, uids = [], []
    for i in range(n):
        uid = f"{i:08d}-0000-4000-8000-{i:012d}"
        uids.append(uid)
        docs.append(("start", {"uid": uid, "time": 1.7e9 + i, "scan_id": i + 1, "plan_name": "x"}))
        docs.append(
            (
                "stop",
                {
                    "uid": f"s{uid[1:]}",
                    "run_start": uid,
                    "time": 1.7e9 + i + 0.5,
                    "exit_status": "success",
                    "num_events": {},
                },
            )
        )
    CatalogWriter(catalog, "csx/raw").write_many(docs)
    with background_server(catalog) as url:
        raw = from_uri(url)["csx"]["raw"]
        assert len(raw) == n
        assert list(raw) == uids  # every page, in order
        assert raw[-1].metadata["start"]["uid"] == uids[-1]
        assert raw[1234].metadata["start"]["uid"] == uids[1233]
        assert [k for k in raw.keys()[2000:2003]] == uids[2000:2003]
        assert len(raw.search(Key("plan_name") == "x")) == n
