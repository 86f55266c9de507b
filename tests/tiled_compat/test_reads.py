"""Reading data with Tiled's client: array slices and blocks (an HDF5 area detector and a
streaming detector too), tables whole and by columns, streams, exports through format=,
run.documents(), data_sources() of external arrays, and the dask structure clients."""

from __future__ import annotations

import io

import event_model
import numpy as np
import pandas as pd
import pytest
from tiled.client import from_uri

from .conftest import events, plain, starts


def _runs(tiled, beamline):
    uids = list(starts(beamline))
    raw = tiled["bmm"]["raw"]
    return [raw[uid] for uid in uids], [beamline[uid] for uid in uids]


def test_array_slices_and_tables(tiled, beamline):
    (scan, *_), (docs, *_) = _runs(tiled, beamline)
    evs = events(docs)
    det1 = np.array([e["data"]["det1"] for e in evs])
    data = scan["primary"]["data"]
    got = data["det1"][:5]
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_array_equal(got, det1[:5])
    np.testing.assert_array_equal(data["motor"].read(), [e["data"]["motor"] for e in evs])
    table = data.read()
    assert table.index.name == "seq_num"  # as Tiled's tables: the index, from pandas metadata
    assert list(table.index) == [e["seq_num"] for e in evs]
    assert list(table.columns) == ["time", "det1", "det2", "motor", "motor_setpoint"]
    np.testing.assert_array_equal(table["det2"], [e["data"]["det2"] for e in evs])
    np.testing.assert_array_equal(table["time"], [e["time"] for e in evs])
    two = data.read(["det1", "motor"])
    assert list(two.columns) == ["det1", "motor"] and two.index.name == "seq_num"
    pd.testing.assert_frame_equal(scan["primary"].read(), table)  # stream.read() is data's
    stamps = scan["primary"]["timestamps"].read()
    np.testing.assert_array_equal(stamps["det1"], [e["timestamps"]["det1"] for e in evs])
    base = scan["baseline"].read()
    assert len(base) == 2 and "motor1" in base.columns
    assert set(scan["primary"]["config"]) == {"det1", "det2", "motor"}
    config = scan["primary"]["config"]["det1"].read()
    descriptor = next(d for n, d in docs if n == "descriptor" and d["name"] == "primary")
    assert config["det1_Imax"].iloc[0] == descriptor["configuration"]["det1"]["data"]["det1_Imax"]


def test_images_and_blocks(tiled, beamline):
    runs, _ = _runs(tiled, beamline)
    frames = beamline["frames"]
    cam = runs[1]["primary"]["data"]["cam"]
    assert cam.shape == frames["cam"].shape and cam.dtype == frames["cam"].dtype
    np.testing.assert_array_equal(cam[1:3], frames["cam"][1:3])
    np.testing.assert_array_equal(cam[2, 1:4, ::2], frames["cam"][2, 1:4, ::2])
    np.testing.assert_array_equal(cam.read_block((0, 0, 0)), frames["cam"])
    np.testing.assert_array_equal(cam.read(), frames["cam"])
    scam = runs[2]["primary"]["data"]["scam"]
    np.testing.assert_array_equal(scam[:], frames["scam"])
    assert scam[:].dtype == np.float32
    wave = runs[3]["primary"]["data"]["wave"]
    np.testing.assert_array_equal(wave[:], np.tile(np.linspace(0, 1, 7), (2, 1)))
    # A whole-table read leaves the detector-file column out (read it as the array above:
    # Tiled's client reads tables through dask, which turns cells holding arrays into text).
    assert "cam" not in runs[1]["primary"]["data"].read().columns


def test_data_sources_of_external_arrays(tiled, beamline):
    from tiled.structures.data_source import DataSource

    runs, _ = _runs(tiled, beamline)
    for run, key in ((runs[1], "cam"), (runs[2], "scam")):
        node = run["primary"]["data"][key]
        (source,) = node.data_sources()
        assert isinstance(source, DataSource)
        assert source.structure_family == "array"
        # as TiledWriter describes both (the area detector's resource/datum converted)
        assert source.mimetype == "application/x-hdf5"
        assert source.parameters["dataset"] == "/entry/data/data"
        assert source.structure["shape"] == list(beamline["frames"][key].shape)
        (asset,) = source.assets
        assert asset.is_directory is False and asset.parameter == "data_uris"
        path = asset.data_uri.removeprefix("file://localhost")
        with open(path, "rb") as f:  # the file people with access can open directly
            assert f.read(8) == b"\x89HDF\r\n\x1a\n"
    assert runs[0]["primary"]["data"]["det1"].data_sources() == []


def test_documents(tiled, beamline):
    runs, all_docs = _runs(tiled, beamline)
    for run, docs in zip(runs, all_docs, strict=True):
        got = list(run.documents())
        # datums come as pages of one (the plugin's clients know no single datum)
        names = [n.replace("datum", "datum_page") if n == "datum" else n for n, _ in docs]
        assert [n for n, _ in got] == names
        for (name, d), (_, doc) in zip(got, docs, strict=True):
            wanted = event_model.pack_datum_page(doc) if name == "datum_page" else doc
            assert dict(d) == plain(wanted)
    with pytest.raises(Exception, match="400"):
        list(runs[0].documents(fill=True))  # documents come as written, and say so


def test_exports(tiled, beamline, tmp_path):
    (scan, *_), _ = _runs(tiled, beamline)
    data = scan["primary"]["data"]
    table = data.read()
    buffer = io.BytesIO()
    data.export(buffer, format="csv")
    csv = pd.read_csv(io.BytesIO(buffer.getvalue()), index_col="seq_num")
    np.testing.assert_allclose(csv["det1"], table["det1"])
    data.export(tmp_path / "t.parquet", format="parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), table)
    buffer = io.BytesIO()
    data["det1"].export(buffer, format="json")
    assert np.allclose(pd.read_json(io.BytesIO(buffer.getvalue()), typ="series"), table["det1"])


def test_dask_structure_clients(tiled_url, beamline):
    import dask.array
    import dask.dataframe

    uid = list(starts(beamline))[1]
    run = from_uri(tiled_url, structure_clients="dask")["bmm"]["raw"][uid]
    cam = run["primary"]["data"]["cam"].read()
    assert isinstance(cam, dask.array.Array)
    np.testing.assert_array_equal(cam.compute(), beamline["frames"]["cam"])
    table = run["primary"]["data"].read()
    assert isinstance(table, dask.dataframe.DataFrame)
    det1 = [e["data"]["det1"] for e in events(beamline[uid])]
    np.testing.assert_array_equal(table.compute()["det1"], det1)
