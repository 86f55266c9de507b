"""One rule for columns that hold an array per row (images, waveforms), everywhere a table is
read: per-row ndarrays in pandas, n-d variables in xarray, left out (and said so) in CSV;
detector-file columns read only when named, and a whole-table read says what it left out."""

from __future__ import annotations

import io
import warnings

import httpx
import numpy as np
import pandas as pd
import pytest

from bluebroker.client import BadRequestError, ColumnsLeftOut, from_uri
from bluebroker.queries import Contains
from tests.demo_data import acquire_demo


@pytest.fixture
def demo(catalog, tmp_path):
    """The demo's runs, served: (url, the cam run's client, the frames its files hold)."""
    from bluebroker.server.run import background_server

    acquire_demo(catalog, tmp_path / "files")
    with background_server(catalog) as url:
        runs = from_uri(url)["bmm"]["raw"]
        run = runs.search(Contains("detectors", "cam")).values().last()
        (asset,) = {a["path"] for a in run["primary"]["data"]["cam"].asset_locations()}
        import h5py

        with h5py.File(asset) as f:
            frames = f["/entry/data/data"][()]
        yield url, run, frames


def _no_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ColumnsLeftOut)
        return call()


def test_image_columns_are_per_row_arrays_in_pandas(demo):
    _, run, frames = demo
    assert frames.shape == (5, 64, 64) and frames.dtype == np.uint16
    df = _no_warning(lambda: run["primary"]["data"].read(["det1", "cam"]))
    assert list(df.columns) == ["det1", "cam"] and len(df) == 5
    for i, cell in enumerate(df["cam"]):
        assert isinstance(cell, np.ndarray) and cell.shape == (64, 64)
        assert cell.dtype == np.uint16
        np.testing.assert_array_equal(cell, frames[i])
    assert df["det1"].dtype == np.float64


def test_image_columns_are_nd_variables_in_xarray(demo):
    _, run, frames = demo
    ds = _no_warning(lambda: run["primary"].read(["det1", "cam"]))
    assert ds["cam"].dims == ("time", "dim_1", "dim_2") and ds["cam"].dtype == np.uint16
    np.testing.assert_array_equal(ds["cam"].values, frames)
    assert ds["det1"].dims == ("time",) and ds.sizes["time"] == 5
    assert "left_out" not in ds.attrs
    with pytest.raises(KeyError, match="no field 'nope'; fields: "):
        run["primary"].read(["nope"])


def test_whole_reads_say_what_they_left_out(demo):
    _, run, _ = demo
    table = run["primary"]["data"]
    assert "cam" in table.columns
    with pytest.warns(ColumnsLeftOut, match=r"table\.read\(\) left out cam: .*named"):
        df = table.read()
    assert "cam" not in df.columns and df.attrs["left_out"] == ["cam"]
    with pytest.warns(ColumnsLeftOut, match=r"stream\.read\(\) left out cam"):
        ds = run["primary"].read()
    assert "cam" not in ds and ds.attrs["left_out"] == ["cam"]
    # a table without detector-file columns says nothing
    _no_warning(lambda: run["primary"]["config"]["det1"].read())


def test_csv_names_the_columns_it_cannot_hold(demo, tmp_path):
    url, run, _ = demo
    table = run["primary"]["data"]
    with pytest.warns(ColumnsLeftOut, match=r"scan\.csv: left out of this CSV: cam \(detector"):
        path = table.export(tmp_path / "scan.csv")
    first, _, rest = path.read_text().partition("\n")
    assert first.startswith("# left out of this CSV: cam (detector file")
    csv = pd.read_csv(io.StringIO(rest), index_col="seq_num")
    assert list(csv.columns) == ["time", "det1"] and len(csv) == 5

    base = f"{url}/api/v1/table/full/{'/'.join(table.path)}"
    mixed = httpx.get(base, params=[("format", "text/csv"), ("column", "det1"), ("column", "cam")])
    assert mixed.status_code == 200
    first, _, rest = mixed.text.partition("\n")
    assert first.startswith("# left out of this CSV: cam (64x64 per row)")
    assert rest.splitlines()[0] == "seq_num,det1" and len(rest.splitlines()) == 6
    only = httpx.get(base, params={"format": "text/csv", "column": "cam"})
    assert only.status_code == 400
    assert "cam holds 64x64 per row" in only.json()["detail"]
    with pytest.raises(BadRequestError, match="CSV holds one value per cell"):
        table.export(tmp_path / "cam.csv", column="cam")
    # a table of single values gets no note
    plain = httpx.get(base, params=[("format", "text/csv"), ("column", "det1")])
    assert plain.text.startswith("seq_num,det1\n")


def test_inline_waveforms_follow_the_same_rule(served, beamline, tmp_path):
    """A waveform kept in the catalog (not a detector file) is read by default, as arrays."""
    wave = from_uri(served)["bmm"]["raw"].values().last()["primary"]
    df = _no_warning(lambda: wave["data"].read())
    assert all(isinstance(c, np.ndarray) and c.shape == (7,) for c in df["wave"])
    np.testing.assert_allclose(df["wave"].iloc[1], np.linspace(0, 1, 7))
    assert _no_warning(lambda: wave.read())["wave"].shape == (2, 7)
    with pytest.warns(ColumnsLeftOut, match=r"wave\.csv: left out of this CSV: wave"):
        text = wave["data"].export(tmp_path / "wave.csv").read_text()
    assert text.startswith("# left out of this CSV: wave (7 per row)")
    assert "[" not in text.partition("\n")[2]  # never numpy's (truncating) text of an array


def test_databroker_tables_follow_the_same_rule(demo):
    from databroker import Broker

    url, run, frames = demo
    db = Broker.from_config({"uri": url, "catalog": "bmm/raw"}, name="bmm")
    h = db[run.uid]
    filled = h.table(fill=True)
    assert all(c.shape == (64, 64) for c in filled["cam"])
    np.testing.assert_array_equal(np.stack(list(filled["cam"])), frames)
    unfilled = h.table()  # 1.2.5's default: datum ids for detector fields
    assert all(isinstance(v, str) for v in unfilled["cam"])
    ds = _no_warning(h.xarray)  # every field, images read, as 1.2.5's v2 read() gave them
    np.testing.assert_array_equal(ds["cam"].values, frames)
    assert ds["cam"].dims == ("time", "dim_1", "dim_2")


def test_live_tables_follow_the_same_rule(demo, served, beamline):
    _, run, _ = demo
    with run["primary"].live() as live:
        live.wait_for(None)
        with pytest.warns(ColumnsLeftOut, match=r"live\.read\(\) left out cam"):
            df = live.read()
        assert len(df) == 5 and df.attrs["left_out"] == ["cam"] and "det1" in df
        with pytest.warns(ColumnsLeftOut, match=r"live\.to_xarray\(\) left out cam"):
            ds = live.to_xarray()
        assert ds.attrs["left_out"] == ["cam"] and ds.sizes["time"] == 5
    wave = from_uri(served)["bmm"]["raw"].values().last()["primary"]
    with wave.live() as live:
        live.wait_for(None)
        df = _no_warning(live.read)
        assert all(isinstance(c, np.ndarray) and c.shape == (7,) for c in df["wave"])
        assert _no_warning(live.to_xarray)["wave"].shape == (2, 7)
