"""Real RunEngine plans, written through the one writer, read back equal to what was emitted."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from ophyd.sim import SynGauss, SynSignal, det, det1, det2, det4, motor, motor1, motor2

from tests.compare import assert_run_matches
from tests.devices import HDF5Camera, StreamHDF5Camera


@pytest.fixture
def acquire(RE, writer, recorder):
    """Run a plan with the writer and a recorder subscribed; return the written run."""

    def run(plan):
        recorder.clear()
        t1 = RE.subscribe(writer)
        t2 = RE.subscribe(recorder)
        try:
            (uid,) = RE(plan)
        finally:
            RE.unsubscribe(t1)
            RE.unsubscribe(t2)
        return writer.catalog["bmm/raw"][uid], list(recorder)

    return run


def test_count(acquire):
    run, docs = acquire(bp.count([det1, det2], num=7))
    assert_run_matches(run, docs)
    assert run.metadata["summary"]["num_events"] == {"primary": 7}
    assert run.metadata["stop"]["exit_status"] == "success"


def test_scan(acquire):
    run, docs = acquire(bp.scan([det], motor, -1, 1, 40))
    assert_run_matches(run, docs)
    # 40 single-event appends were merged into few chunks, and the values are still exact.
    np.testing.assert_allclose(run["primary"]["data"]["motor"][:3], [-1, -1 + 2 / 39, -1 + 4 / 39])


def test_grid_scan(acquire):
    run, docs = acquire(bp.grid_scan([det4], motor1, -1, 1, 3, motor2, -2, 2, 4))
    assert_run_matches(run, docs)
    assert len(run["primary"]["data"]) == 12


def test_baseline(acquire):
    plan = bpp.baseline_wrapper(bp.count([det1], num=3), [motor1, motor2])
    run, docs = acquire(plan)
    assert_run_matches(run, docs)
    assert set(run) == {"primary", "baseline"}
    assert len(run["baseline"]["data"]) == 2


def test_configuration_change_mid_run(acquire):
    det = SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1)

    @bpp.run_decorator()
    def plan():
        yield from bps.trigger_and_read([det, motor])
        yield from bps.trigger_and_read([det, motor])
        yield from bps.configure(det, {"sigma": 3.0})
        yield from bps.trigger_and_read([det, motor])

    run, docs = acquire(plan())
    assert_run_matches(run, docs)
    stream = run["primary"]
    assert len(stream.descriptors) == 2
    sigma = stream["config"]["det"].read()["det_sigma"].tolist()
    assert sigma[0] != 3.0 and sigma[1] == 3.0
    assert list(stream["data"].read().index) == [1, 2, 3]


def test_inline_arrays_keep_shape_and_dtype(acquire):
    wave = SynSignal(func=lambda: np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), name="wave")
    counts = SynSignal(func=lambda: np.int64(7), name="counts")
    run, docs = acquire(bp.count([wave, counts], num=4))
    assert_run_matches(run, docs)
    node = run["primary"]["data"]["wave"]
    assert node.shape == (4, 2, 3)
    assert node[1:3, 1, :2].shape == (2, 2)


def test_hdf5_through_resource_datum(acquire, tmp_path):
    cam = HDF5Camera("cam", tmp_path)
    run, docs = acquire(bp.count([cam, det1], num=5))
    assert_run_matches(run, docs)
    node = run["primary"]["data"]["cam"]
    assert node.shape == (5, 4, 5)
    assert node.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(node.read(), np.stack(cam.frames))
    np.testing.assert_array_equal(node[2:4], np.stack(cam.frames[2:4]))
    assert [a["path"] for a in node.asset_locations()] == [str(cam.path)]


def test_hdf5_through_stream_resource(acquire, tmp_path):
    cam = StreamHDF5Camera("scam", tmp_path, shape=(3, 2), dtype="float32")
    run, docs = acquire(bp.count([cam, det1], num=6))
    assert_run_matches(run, docs)
    assert [n for n, _ in docs].count("stream_datum") == 6
    node = run["primary"]["data"]["scam"]
    assert node.shape == (6, 3, 2)
    assert node.dtype == np.dtype("float32")
    np.testing.assert_array_equal(node.read(), np.stack(cam.frames))
    np.testing.assert_array_equal(node[-2:], np.stack(cam.frames[-2:]))
    np.testing.assert_array_equal(node[1, 2], cam.frames[1][2])


def test_stream_as_xarray(acquire, tmp_path):
    cam = HDF5Camera("cam", tmp_path)
    run, _ = acquire(bp.scan([det1, cam], motor, 0, 1, 4))
    ds = run["primary"].read()
    assert set(ds.data_vars) == {"det1", "motor", "motor_setpoint"}
    assert ds["motor"].dims == ("time",)
    np.testing.assert_allclose(ds["motor"].values, np.linspace(0, 1, 4))
    assert ds["seq_num"].values.tolist() == [1, 2, 3, 4]
    full = run["primary"].read(["cam", "det1"])
    assert full["cam"].dims == ("time", "dim_1", "dim_2")
    np.testing.assert_array_equal(full["cam"].values, np.stack(cam.frames))
