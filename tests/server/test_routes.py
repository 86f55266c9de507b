"""Every route and format, over real HTTP, on real RunEngine data."""

from __future__ import annotations

import gzip
import io
import json

import h5py
import httpx
import msgpack
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tifffile
import xarray
import zstandard
from event_model import unpack_datum_page
from PIL import Image

from tests.compare import same


@pytest.fixture
def api(served, beamline):
    with httpx.Client(base_url=served + "/api/v1") as client:
        yield client, beamline


def _uids(beamline):
    return [k for k in beamline if k != "frames"]


def test_about_health_and_openapi(served):
    about = httpx.get(served + "/api/v1/").json()
    assert "image/png" in about["formats"]["array"]
    assert "application/x-parquet" in about["formats"]["table"]
    assert "scan_id" in about["queries"] and not about["authentication"]["required"]
    assert httpx.get(served + "/healthz").json() == {"status": "ok"}
    assert "/api/v1/array/full/{path}" in httpx.get(served + "/openapi.json").json()["paths"]


def test_metadata_envelope(api):
    client, beamline = api
    uid = _uids(beamline)[0]
    body = client.get(f"/metadata/bmm/raw/{uid}").json()["data"]
    assert body["id"] == uid
    attrs = body["attributes"]
    assert attrs["structure_family"] == "container"
    assert attrs["specs"][0]["name"] == "BlueskyRun"
    assert attrs["metadata"]["start"]["sample"] == "Cu"
    assert set(attrs["metadata"]["summary"]["stream_names"]) == {"primary", "baseline"}
    array = client.get(f"/metadata/bmm/raw/{uid}/primary/data/motor").json()["data"]
    assert array["attributes"]["structure"]["shape"] == [11]
    assert array["attributes"]["structure"]["data_type"] == {
        "endianness": "little",
        "kind": "f",
        "itemsize": 8,
    }
    assert array["links"]["full"].endswith(f"/array/full/bmm/raw/{uid}/primary/data/motor")


def test_search_filters_sort_and_paging(api):
    client, beamline = api
    uids = _uids(beamline)
    page = client.get("/search/bmm/raw", params={"page[limit]": 2}).json()
    assert [d["id"] for d in page["data"]] == uids[:2] and page["meta"]["count"] == 4
    nxt = httpx.get(page["links"]["next"]).json()
    assert [d["id"] for d in nxt["data"]] == uids[2:]
    assert page["links"]["prev"] is None and nxt["links"]["next"] is None
    newest = client.get("/search/bmm/raw", params={"sort": "-start.time", "page[limit]": 1}).json()
    assert newest["data"][0]["id"] == uids[-1]
    found = client.get(
        "/search/bmm/raw",
        params={"filter[eq][condition][key]": '"sample"', "filter[eq][condition][value]": '"Fe"'},
    )
    assert [d["id"] for d in found.json()["data"]] == [uids[1]]
    ids_only = client.get("/search/bmm/raw", params={"fields": ""}).json()["data"][0]
    assert ids_only["attributes"] == {}


def test_array_slices_and_formats(api):
    client, beamline = api
    uid = _uids(beamline)[0]
    route = f"/array/full/bmm/raw/{uid}/primary/data/motor"
    expected = np.asarray(
        [e["data"]["motor"] for n, e in beamline[uid] if n == "event" and "motor" in e["data"]]
    )
    raw = client.get(route, params={"slice": "2:7"}, headers={"Accept": "application/octet-stream"})
    assert raw.headers["x-array-shape"] == "5"
    np.testing.assert_array_equal(np.frombuffer(raw.content, dtype="<f8"), expected[2:7])
    assert (
        client.get(route, params={"slice": "::5", "format": "json"}).json()
        == expected[::5].tolist()
    )
    assert (
        msgpack.unpackb(client.get(route, params={"format": "msgpack"}).content)
        == expected.tolist()
    )
    csv = client.get(route, params={"format": "csv", "slice": "0:3"}).text.split()
    np.testing.assert_allclose([float(v) for v in csv], expected[:3])
    block = client.get(
        route.replace("full", "block"), params={"block": "0", "format": "json"}
    ).json()
    assert block == expected.tolist()


def test_images(api):
    client, beamline = api
    uid = _uids(beamline)[1]
    frames = beamline["frames"]["cam"]
    route = f"/array/full/bmm/raw/{uid}/primary/data/cam"
    png = client.get(route, params={"format": "png", "slice": "2"})
    assert png.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(png.content)))
    assert img.shape == frames[2].shape
    np.testing.assert_array_equal(
        np.argsort(img.ravel(), kind="stable"), np.argsort(frames[2].ravel(), kind="stable")
    )
    tiff = client.get(route, params={"format": "tiff"})  # 3-D: the first plane
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(tiff.content)), frames[0])
    small = client.get(route, params={"format": "tiff", "slice": "1", "max_size": 3})
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(small.content)), frames[1][::2, ::2])


def test_external_array_data_sources(api):
    client, beamline = api
    uid = _uids(beamline)[2]
    meta = client.get(f"/metadata/bmm/raw/{uid}/primary/data/scam").json()["data"]
    (source,) = meta["attributes"]["data_sources"]
    assert source["mimetype"] == "application/x-hdf5"
    assert source["assets"][0]["path"].endswith(".h5")
    raw = client.get(
        f"/array/full/bmm/raw/{uid}/primary/data/scam",
        params={"slice": "1:3"},
        headers={"Accept": "application/octet-stream"},
    )
    got = np.frombuffer(raw.content, dtype=raw.headers["x-array-dtype"]).reshape(2, 3, 4)
    np.testing.assert_array_equal(got, beamline["frames"]["scam"][1:3])


def _table_expected(beamline, uid):
    events = [e for n, e in beamline[uid] if n == "event" and "det1" in e["data"]]
    return pd.DataFrame(
        {k: [e["data"][k] for e in events] for k in ("det1", "motor")},
        index=pd.Index([e["seq_num"] for e in events], name="seq_num"),
    )


@pytest.mark.parametrize("fmt", ["arrow", "parquet", "csv", "json", "msgpack", "xlsx", "hdf5"])
def test_table_formats(api, fmt):
    client, beamline = api
    uid = _uids(beamline)[0]
    expected = _table_expected(beamline, uid)
    r = client.get(
        f"/table/full/bmm/raw/{uid}/primary/data",
        params=[("format", fmt), ("column", "det1"), ("column", "motor")],
    )
    assert r.status_code == 200, r.text
    content = io.BytesIO(r.content)
    if fmt == "arrow":  # seq_num is the first column, named in the schema metadata
        table = pa.ipc.open_file(content).read_all()
        assert table.schema.metadata[b"bluebroker.index"] == b"seq_num"
        got = table.to_pandas().set_index("seq_num")
    elif fmt == "parquet":
        got = pd.read_parquet(content)  # pandas metadata restores the seq_num index
    elif fmt == "csv":
        got = pd.read_csv(content, index_col="seq_num")
    elif fmt == "json":
        got = pd.DataFrame(json.loads(r.content)).set_index("seq_num")
    elif fmt == "msgpack":
        got = pd.DataFrame(msgpack.unpackb(r.content)).set_index("seq_num")
    elif fmt == "xlsx":
        got = pd.read_excel(content, index_col="seq_num")
    else:
        with h5py.File(content, "r") as f:
            got = pd.DataFrame(
                {k: f[k][()] for k in ("det1", "motor")},
                index=pd.Index(f["seq_num"][()], name="seq_num"),
            )
    pd.testing.assert_frame_equal(got[["det1", "motor"]], expected, check_dtype=False)
    assert f'filename="{uid[:8]}_primary_data.' in r.headers["content-disposition"]


def test_stream_and_run_files(api):
    client, beamline = api
    uid = _uids(beamline)[0]
    nc = client.get(f"/container/full/bmm/raw/{uid}/primary", params={"format": "netcdf"})
    ds = xarray.open_dataset(io.BytesIO(nc.content), engine="h5netcdf")
    np.testing.assert_array_equal(ds["motor"].values, np.linspace(-1, 1, 11))
    assert ds["motor"].dims == ("time",)
    h5 = client.get(f"/container/full/bmm/raw/{uid}", params={"format": "hdf5", "download": "true"})
    assert h5.headers["content-disposition"].startswith("attachment;")
    with h5py.File(io.BytesIO(h5.content), "r") as f:
        assert set(f) == {"primary", "baseline"}
        np.testing.assert_array_equal(f["primary/data/motor"][()], np.linspace(-1, 1, 11))


@pytest.mark.parametrize(
    "accept",
    ["application/x-ndjson", "application/json-seq", "application/x-msgpack", "application/json"],
)
def test_documents_out(api, accept):
    client, beamline = api
    uid = _uids(beamline)[1]
    r = client.get(f"/documents/bmm/raw/{uid}", headers={"Accept": accept})
    if accept == "application/x-msgpack":
        got = list(msgpack.Unpacker(io.BytesIO(r.content)))
    elif accept == "application/json":
        got = r.json()
    else:
        got = [json.loads(line.lstrip("\x1e")) for line in r.text.splitlines() if line]
    if accept == "application/json-seq":  # records {"name", "doc"} as Tiled sends them,
        got = [[g["name"], g["doc"]] for g in got]  # datums as one-datum pages
        got = [["datum", *unpack_datum_page(d)] if n == "datum_page" else [n, d] for n, d in got]
    assert [n for n, _ in got] == [n for n, _ in beamline[uid]]
    assert same(got[0][1], json.loads(json.dumps(beamline[uid][0][1])))


def test_documents_in(api, RE, recorder):
    from bluesky import plans as bp
    from ophyd.sim import det1

    client, _ = api
    RE.subscribe(recorder)
    (uid,) = RE(bp.count([det1], num=3))
    docs = json.loads(json.dumps(recorder))
    r = client.post("/documents/csx/raw", json=docs)
    assert r.status_code == 200 and r.json()["written"] == len(docs)
    again = client.post(
        "/documents/csx/raw",
        content=msgpack.packb(docs),
        headers={"Content-Type": "application/x-msgpack"},
    )
    assert again.json() == {"written": 0, "duplicates": len(docs), "rejected": []}
    table = client.get(f"/table/full/csx/raw/{uid}/primary/data").json()
    assert [row["det1"] for row in table] == [d["data"]["det1"] for n, d in docs if n == "event"]
    elsewhere = client.post("/documents/bmm/raw", json=docs[:1]).json()
    assert "another catalog" in elsewhere["rejected"][0]["error"]
    bad = client.post("/documents/new/raw", json=[["start", {"uid": "x"}], ["event", {}]])
    assert bad.status_code == 422
    assert [b["index"] for b in bad.json()["rejected"]] == [0, 1]
    assert "time" in bad.json()["rejected"][0]["error"]
    assert (
        client.post(
            "/documents/new/raw", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_posted_pickles_are_never_unpickled(api, tmp_path):
    import msgpack_numpy

    client, _ = api
    marker = tmp_path / "unpickled"

    class Trap:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    body = msgpack.packb(
        [["start", {"uid": "p", "time": 1.0, "x": np.array([Trap()], dtype=object)}]],
        default=msgpack_numpy.encode,
    )
    r = client.post(
        "/documents/new/raw", content=body, headers={"Content-Type": "application/x-msgpack"}
    )
    assert r.status_code == 400 and "pickled" in r.json()["detail"]
    assert not marker.exists()


def test_unfilled_tables_give_datum_ids(api):
    client, beamline = api
    uid = _uids(beamline)[1]  # the run with the HDF5 camera
    events = [d for n, d in beamline[uid] if n == "event"]
    route = f"/table/full/bmm/raw/{uid}/primary/data"
    rows = client.get(route, params={"fill": "false", "column": ["cam", "det1"]}).json()
    assert [r["cam"] for r in rows] == [e["data"]["cam"] for e in events]
    filled = client.get(route, params={"column": "cam"}).json()
    assert filled[0]["cam"] == beamline["frames"]["cam"][0].tolist()


def test_compression(api):
    client, beamline = api
    uid = _uids(beamline)[0]
    route = f"/documents/bmm/raw/{uid}"
    plain = client.get(route, headers={"Accept-Encoding": "identity"}).content
    gz = client.get(route, headers={"Accept-Encoding": "gzip"})
    assert gz.headers.get("content-encoding") == "gzip"
    assert gz.content == plain  # httpx decodes gzip itself
    with client.stream("GET", route, headers={"Accept-Encoding": "zstd"}) as r:
        assert r.headers["content-encoding"] == "zstd"
        body = b"".join(r.iter_raw())
    assert zstandard.ZstdDecompressor().decompressobj().decompress(body) == plain
    assert gzip.compress(plain)  # sanity: the body is large enough to be compressed


def test_errors_say_what_to_fix(api):
    client, beamline = api
    uid = _uids(beamline)[0]
    cases = [
        (f"/metadata/bmm/raw/{uid}/nothing", {}, 404, "no stream 'nothing'"),
        ("/metadata/bmm/raw/zzzz", {}, 404, "no run with uid"),
        (f"/array/full/bmm/raw/{uid}/primary/data/motor", {"slice": "a:b"}, 400, "numpy syntax"),
        (f"/array/full/bmm/raw/{uid}/primary/data/motor", {"slice": "0,1"}, 400, "does not fit"),
        (f"/array/full/bmm/raw/{uid}/primary/data/motor", {"format": "gif"}, 406, "image/png"),
        (f"/array/full/bmm/raw/{uid}/primary/data", {}, 400, "/table/full"),
        (f"/table/full/bmm/raw/{uid}/primary/data", {"column": "nope"}, 400, "columns"),
        (f"/table/full/bmm/raw/{uid}/primary/data", {"fill": "maybe"}, 400, "true or false"),
        (f"/table/full/bmm/raw/{uid}/primary/config/det1", {"fill": "false"}, 400, "applies to"),
        ("/search/bmm/raw", {"filter[bogus][condition][key]": '"x"'}, 400, "unknown query"),
        ("/search/bmm/raw", {"page[limit]": "-1"}, 400, "page[limit]"),
        (f"/search/bmm/raw/{uid}", {"sort": "time"}, 400, "and served folders can"),
        ("/nowhere", {}, 404, "/api/v1"),
    ]
    for route, params, status, words in cases:
        r = client.get(route, params=params)
        assert r.status_code == status, (route, r.text)
        assert words in r.json()["detail"], (route, r.json())


def test_api_key(catalog, beamline):
    from bluebroker.server.run import background_server

    with background_server(catalog, api_key="s3cret") as url:
        assert httpx.get(url + "/api/v1/metadata/").status_code == 401
        assert "Apikey" in httpx.get(url + "/api/v1/metadata/").json()["detail"]
        assert httpx.get(url + "/api/v1/metadata/?api_key=wrong").status_code == 401
        assert httpx.get(url + "/api/v1/metadata/?api_key=s3cret").status_code == 200
        ok = httpx.get(url + "/api/v1/search/bmm/raw", headers={"Authorization": "Apikey s3cret"})
        assert ok.json()["meta"]["count"] == 4
        assert httpx.get(url + "/healthz").status_code == 200


def test_create_app_limits_are_checked(catalog):
    from bluebroker.server.app import create_app

    with pytest.raises(TypeError, match="max_body_bytes"):
        create_app(catalog, max_body=10)
    with pytest.raises(ValueError, match="max_read_bytes must be a positive number"):
        create_app(catalog, max_read_bytes=0)
    app = create_app(catalog, max_offset=5, search_timeout=2.5)
    assert app.state.limits.max_offset == 5 and catalog.search_timeout == 2.5
