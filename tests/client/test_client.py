"""The Python client against a live server: mapping behaviour, search, slicing, reading."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bluebroker import queries as q
from bluebroker.client import (
    AuthenticationError,
    BadRequestError,
    CatalogClient,
    NotFoundError,
    RunClient,
    from_uri,
)
from tests.compare import same


@pytest.fixture
def client(served, beamline):
    return from_uri(served), beamline


def _uids(beamline):
    return [k for k in beamline if k != "frames"]


def _events(docs, stream="primary"):
    descs = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == stream}
    return [d for n, d in docs if n == "event" and d["descriptor"] in descs]


def test_the_talks_example(client):
    c, beamline = client
    uid = _uids(beamline)[0]
    assert list(c) == ["bmm"] and list(c["bmm"]) == ["raw"]
    # c['bmm']['raw'].values().last()['primary']['data']['IO'][:5], with this beamline's names
    first = c["bmm"]["raw"].values().first()["primary"]["data"]["motor"][:5]
    expected = [e["data"]["motor"] for e in _events(beamline[uid])][:5]
    np.testing.assert_array_equal(first, expected)
    last = c["bmm"]["raw"].values().last()["primary"]["data"]["wave"][:5]
    assert last.shape == (2, 7)


def test_mapping_and_views(client):
    c, beamline = client
    uids = _uids(beamline)
    cat = c["bmm/raw"]
    assert isinstance(cat, CatalogClient) and len(cat) == 4
    assert list(cat) == uids and list(cat.keys()) == uids
    assert cat.keys()[1:3] == uids[1:3]
    assert cat.keys().first() == uids[0] and cat.keys().last() == uids[-1]
    assert cat.keys().head(2) == uids[:2] and cat.keys().tail(2) == uids[-2:]
    assert [r.uid for r in cat.values().tail(3)] == uids[-3:]
    assert [k for k, _ in cat.items()[:2]] == uids[:2]
    assert uids[0] in cat and "nope" not in cat
    assert cat[-1].uid == uids[-1] and cat[-4].uid == uids[0]
    scan_id = beamline[uids[1]][0][1]["scan_id"]
    assert cat[scan_id].uid == uids[1]
    assert cat[uids[2][:8]].uid == uids[2]
    run = cat[uids[0]]
    assert isinstance(run, RunClient) and set(run) == {"primary", "baseline"}
    assert re.fullmatch(
        r"<Run \{'baseline', 'primary'\} scan_id=\d+ uid='\w{8}' "
        r"\d{4}-\d\d-\d\d \d\d:\d\d>",
        repr(run),
    )


def test_search_and_sort(client):
    c, beamline = client
    uids = _uids(beamline)
    cat = c["bmm"]["raw"]
    assert list(cat.search(q.Key("sample") == "Fe")) == [uids[1]]
    assert list(cat.search(q.In("sample", ["Cu", "Si"])).search(q.NotEq("plan_name", "scan"))) == [
        uids[2]
    ]
    assert list(cat.search(q.FullText("Si"))) == [uids[2]]
    assert list(cat.sort(("start.time", -1))) == uids[::-1]
    found = cat.search(q.Key("sample") == "Si")
    assert found[-1].uid == uids[2] and len(found) == 1
    with pytest.raises(KeyError):
        found[uids[0]]
    assert found[uids[2][:6]].uid == uids[2]


def test_arrays_tables_and_streams(client):
    c, beamline = client
    uids = _uids(beamline)
    docs = beamline[uids[0]]
    events = _events(docs)
    data = c["bmm/raw"][uids[0]]["primary"]["data"]
    node = data["det2"]
    assert node.shape == (11,) and node.dtype == np.float64 and node.dims == ("time",)
    np.testing.assert_array_equal(node[::3], [e["data"]["det2"] for e in events][::3])
    np.testing.assert_array_equal(node.read(), [e["data"]["det2"] for e in events])
    table = data.read()
    assert list(table.index) == [e["seq_num"] for e in events]
    assert list(table.columns) == ["time", "det1", "det2", "motor", "motor_setpoint"]
    pd.testing.assert_series_equal(
        data.read(["motor"])["motor"],
        pd.Series([e["data"]["motor"] for e in events], index=table.index, name="motor"),
    )
    ds = c["bmm/raw"][uids[0]]["baseline"].read()
    assert ds["motor1"].dims == ("time",) and len(ds["time"]) == 2
    wave = c["bmm/raw"][uids[3]]["primary"]
    np.testing.assert_allclose(wave["data"]["wave"][1, 2:4], np.linspace(0, 1, 7)[2:4])
    assert wave.read()["wave"].shape == (2, 7)
    cam = c["bmm/raw"][uids[1]]["primary"]["data"]["cam"]
    assert cam.shape == (4, 6, 5) and cam.dtype == np.uint16
    np.testing.assert_array_equal(cam[1:3, ::2], beamline["frames"]["cam"][1:3, ::2])
    assert cam.asset_locations()[0]["path"].endswith(".h5")
    scam = c["bmm/raw"][uids[2]]["primary"]
    np.testing.assert_array_equal(scam.read(["scam"])["scam"].values, beamline["frames"]["scam"])


def test_metadata_documents_and_formats(client):
    c, beamline = client
    uid = _uids(beamline)[1]
    run = c["bmm/raw"][uid]
    assert run.metadata["start"]["sample"] == "Fe"
    assert run.metadata["summary"]["num_events"] == {"primary": 4}
    docs = list(run.documents())
    assert [n for n, _ in docs] == [n for n, _ in beamline[uid]]
    assert all(same(a, b) for (_, a), (_, b) in zip(docs, beamline[uid], strict=True))
    assert "image/png" in run["primary"]["data"]["cam"].formats
    assert "application/x-parquet" in run["primary"]["data"].formats


def test_export(client, tmp_path):
    c, beamline = client
    uids = _uids(beamline)
    data = c["bmm/raw"][uids[0]]["primary"]["data"]
    csv = pd.read_csv(data.export(tmp_path / "scan.csv"), index_col="seq_num")
    assert list(csv["det2"]) == list(data.read()["det2"])
    parquet = pd.read_parquet(data.export(tmp_path / "scan.parquet"))
    assert list(parquet.index) == list(csv.index)
    import xarray

    nc = c["bmm/raw"][uids[0]]["primary"].export(tmp_path / "scan.nc")
    assert xarray.open_dataset(nc, engine="h5netcdf")["motor"].shape == (11,)
    png = c["bmm/raw"][uids[1]]["primary"]["data"]["cam"].export(tmp_path / "frame.png", slice="2")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="extension"):
        data.export(tmp_path / "noextension")


def test_errors(client, catalog, served):
    c, beamline = client
    uid = _uids(beamline)[0]
    with pytest.raises(KeyError, match="no stream 'nope'"):
        c["bmm/raw"][uid]["nope"]
    with pytest.raises(NotFoundError, match="scan_id 424242"):
        c["bmm/raw"][424242]
    with pytest.raises(BadRequestError, match="does not fit"):
        c["bmm/raw"][uid]["primary"]["data"]["motor"].read((0, 1))
    with pytest.raises(ValueError, match="http"):
        from_uri("ftp://example.org")
    with pytest.raises(ConnectionError, match="cannot reach"):
        from_uri("http://127.0.0.1:9")


def test_api_key_from_argument_or_environment(catalog, beamline, monkeypatch):
    from bluebroker.server.run import background_server

    with background_server(catalog, api_key="k3y") as url:
        with pytest.raises(AuthenticationError, match="API key") as info:
            from_uri(url)
        assert "from_uri(url, api_key=" in str(info.value)
        assert "BLUEBROKER_API_KEY" in str(info.value)
        assert list(from_uri(url, api_key="k3y")["bmm"]) == ["raw"]
        monkeypatch.setenv("BLUEBROKER_API_KEY", "k3y")
        assert len(from_uri(url + "/api/v1/metadata/bmm/raw")) == 4


def test_tables_are_mappings_of_their_columns(client):
    c, _ = client
    table = c["bmm/raw"].values().first()["primary"]["data"]
    assert list(table) == table.columns and "det1" in table and "nope" not in table
    assert [k for k, _ in table.items()] == table.columns
    assert [v.path[-1] for v in table.values()] == table.columns
    with pytest.raises(TypeError, match="strings"):
        table[0]


def test_search_takes_mongo_dicts_and_says_what_else(client):
    c, _ = client
    runs = c["bmm/raw"]
    by_dict = runs.search({"sample": {"$in": ["Cu", "Fe"]}, "plan_name": "scan"})
    by_query = runs.search(q.In("sample", ["Cu", "Fe"])).search(q.Key("plan_name") == "scan")
    assert list(by_dict) == list(by_query) and len(by_dict) == 1
    with pytest.raises(ValueError, match=r"\$where operator is not supported"):
        runs.search({"$where": "1"})
    with pytest.raises(TypeError, match="Key\\('plan_name'\\) == 'scan'"):
        runs.search("plan_name == scan")


def test_index_errors_say_how_many_there_are(client):
    c, _ = client
    runs = c["bmm/raw"]
    with pytest.raises(IndexError, match=r"has 4 entries \(valid: 0..3, or -1..-4\)"):
        runs[-100000]
    with pytest.raises(IndexError, match="nothing in /bmm/raw matches this search"):
        runs.search(q.Key("sample") == "unobtainium").values()[-1]
