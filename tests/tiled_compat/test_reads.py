"""Reading data with Tiled's client: array slices and blocks (an HDF5 area detector and a
streaming detector too), streams as xarray datasets whole and by variables, configuration
tables, exports through format=, run.documents(), data_sources() of external arrays, and the
dask structure clients."""

from __future__ import annotations

import io

import event_model
import numpy as np
import pandas as pd
import pytest
import xarray
from tiled.client import from_uri

from .conftest import events, plain, starts


def _runs(tiled, beamline):
    uids = list(starts(beamline))
    raw = tiled["bmm"]["raw"]
    return [raw[uid] for uid in uids], [beamline[uid] for uid in uids]


def test_array_slices_and_streams(tiled, beamline):
    """A stream's data and timestamps are xarray datasets, as in Databroker 2's layout (and
    in Tiled's .v2 view of TiledWriter's runs): stream.read() is an xarray.Dataset."""
    (scan, *_), (docs, *_) = _runs(tiled, beamline)
    evs = events(docs)
    det1 = np.array([e["data"]["det1"] for e in evs])
    data = scan["primary"]["data"]
    assert set(data) == {"time", "det1", "det2", "motor", "motor_setpoint"}
    got = data["det1"][:5]
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_array_equal(got, det1[:5])
    np.testing.assert_array_equal(data["motor"].read(), [e["data"]["motor"] for e in evs])
    ds = data.read()
    assert isinstance(ds, xarray.Dataset)
    assert list(ds.coords) == ["time"] and set(ds.data_vars) == set(data) - {"time"}
    np.testing.assert_array_equal(ds["time"], [e["time"] for e in evs])
    np.testing.assert_array_equal(ds["det2"], [e["data"]["det2"] for e in evs])
    assert ds["det2"].dims == ("time",)
    two = data.read(["det1", "motor"])
    assert set(two.data_vars) == {"det1", "motor"}
    xarray.testing.assert_identical(scan["primary"].read(), ds)  # stream.read() is data's
    stamps = scan["primary"]["timestamps"].read()
    np.testing.assert_array_equal(stamps["det1"], [e["timestamps"]["det1"] for e in evs])
    base = scan["baseline"].read()
    assert base.sizes["time"] == 2 and "motor1" in base.data_vars
    assert set(scan["primary"]["config"]) == {"det1", "det2", "motor"}
    config = scan["primary"]["config"]["det1"].read()
    descriptor = next(d for n, d in docs if n == "descriptor" and d["name"] == "primary")
    assert config["det1_Imax"].iloc[0] == descriptor["configuration"]["det1"]["data"]["det1_Imax"]


def test_images_and_blocks(tiled, beamline):
    runs, _ = _runs(tiled, beamline)
    frames = dict(beamline["frames"])
    # one frame per point: TiledWriter's axis of frames within an event, (4, 1, 6, 5)
    frames["cam"] = frames["cam"][:, np.newaxis]
    cam = runs[1]["primary"]["data"]["cam"]
    assert cam.shape == frames["cam"].shape and cam.dtype == frames["cam"].dtype
    np.testing.assert_array_equal(cam[1:3], frames["cam"][1:3])
    np.testing.assert_array_equal(cam[2, 0, 1:4, ::2], frames["cam"][2, 0, 1:4, ::2])
    np.testing.assert_array_equal(cam[..., 1], frames["cam"][..., 1])
    np.testing.assert_array_equal(cam.read_block((0, 0, 0, 0)), frames["cam"])
    np.testing.assert_array_equal(cam.read(), frames["cam"])
    scam = runs[2]["primary"]["data"]["scam"]
    np.testing.assert_array_equal(scam[:], frames["scam"])
    assert scam[:].dtype == np.float32
    wave = runs[3]["primary"]["data"]["wave"]
    np.testing.assert_array_equal(wave[:], np.tile(np.linspace(0, 1, 7), (2, 1)))
    # in the stream's dataset, the images are a variable along time like the others
    ds = runs[1]["primary"].read()
    assert ds["cam"].dims[0] == "time" and ds["cam"].dtype == frames["cam"].dtype
    np.testing.assert_array_equal(ds["cam"], frames["cam"])
    np.testing.assert_array_equal(runs[1]["primary"].read(["cam"])["cam"], frames["cam"])


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
        frames = beamline["frames"][key]
        shape = [*frames.shape[:1], 1, *frames.shape[1:]] if key == "cam" else list(frames.shape)
        assert source.structure["shape"] == shape  # with TiledWriter's frame axis
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
    (scan, *_), (docs, *_) = _runs(tiled, beamline)
    evs = events(docs)
    data = scan["primary"]["data"]
    buffer = io.BytesIO()
    data.export(buffer, format="csv")
    csv = pd.read_csv(io.BytesIO(buffer.getvalue()), index_col="seq_num")
    np.testing.assert_allclose(csv["det1"], [e["data"]["det1"] for e in evs])
    assert list(csv.index) == [e["seq_num"] for e in evs]
    data.export(tmp_path / "t.parquet", format="parquet")
    frame = pd.read_parquet(tmp_path / "t.parquet")
    np.testing.assert_array_equal(frame["motor"], [e["data"]["motor"] for e in evs])
    buffer = io.BytesIO()
    data["det1"].export(buffer, format="json")
    got = pd.read_json(io.BytesIO(buffer.getvalue()), typ="series")
    np.testing.assert_allclose(got, [e["data"]["det1"] for e in evs])


def test_dask_structure_clients(tiled_url, beamline):
    import dask.array

    uid = list(starts(beamline))[1]
    run = from_uri(tiled_url, structure_clients="dask")["bmm"]["raw"][uid]
    cam = run["primary"]["data"]["cam"].read()
    assert isinstance(cam, dask.array.Array)
    frames = beamline["frames"]["cam"][:, np.newaxis]  # TiledWriter's frame axis
    np.testing.assert_array_equal(cam.compute(), frames)
    ds = run["primary"].read()
    assert isinstance(ds["det1"].data, dask.array.Array)  # lazy until computed
    det1 = [e["data"]["det1"] for e in events(beamline[uid])]
    np.testing.assert_array_equal(ds["det1"].compute(), det1)
    np.testing.assert_array_equal(ds["cam"].compute(), frames)


def test_frame_axis_for_tiled_client_only(tiled_url, beamline):
    """The same server, the same camera: Tiled's client sees TiledWriter's frame axis, our
    own client (and the databroker facade built on it) the event model's shape."""
    from bluebroker.client import from_uri as our_from_uri

    uid = list(starts(beamline))[1]
    frames = beamline["frames"]["cam"]
    ours = our_from_uri(tiled_url)["bmm"]["raw"][uid]["primary"]["data"]["cam"]
    theirs = from_uri(tiled_url)["bmm"]["raw"][uid]["primary"]["data"]["cam"]
    assert ours.shape == frames.shape and theirs.shape == (frames.shape[0], 1, *frames.shape[1:])
    np.testing.assert_array_equal(ours[-1], frames[-1])
    np.testing.assert_array_equal(theirs[-1, 0], frames[-1])
    # the streaming camera's stream_resource names no frames per point: no axis added
    scam_uid = list(starts(beamline))[2]
    scam = from_uri(tiled_url)["bmm"]["raw"][scam_uid]["primary"]["data"]["scam"]
    assert scam.shape == beamline["frames"]["scam"].shape
