"""v2-style access: ``databroker.catalog[name]``, ``cat[-1]``, ``cat[uid]``, ``cat.search``,
``run.metadata``, ``run.primary.read()``, ``run.documents(fill=...)``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor

import databroker
from tests.compare import same
from tests.devices import HDF5Camera


@pytest.fixture
def named(server, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".config" / "databroker").mkdir(parents=True)
    (home / ".config" / "databroker" / "csx.yml").write_text(f"uri: {server}\ncatalog: csx/raw\n")
    monkeypatch.setenv("HOME", str(home))
    return home


def test_catalog_runs_and_streams(named, RE_db, recorder, tmp_path):
    cam = HDF5Camera("cam", tmp_path, shape=(3, 4))
    RE_db(bp.scan([det1, det2], motor, 0, 1, 4), sample="Cu")
    RE_db(bp.count([cam], num=2), sample="Fe")
    first, second = [d["uid"] for n, d in recorder if n == "start"]
    cat = databroker.catalog["csx"]
    assert list(databroker.catalog) == ["csx"]
    assert cat[-1].metadata["start"]["uid"] == second
    assert cat[first].metadata["stop"]["exit_status"] == "success"
    assert list(cat.search({"sample": "Cu"})) == [first]
    assert list(cat.search({"plan_name": {"$in": ["scan", "count"]}})) == [second, first]
    assert len(cat) == 2
    ds = cat[first].primary.read()
    assert ds["det1"].dims == ("time",) and ds.sizes["time"] == 4
    events = [d for n, d in recorder if n == "event" and "det1" in d["data"]]
    assert list(ds["det1"].values) == [e["data"]["det1"] for e in events]
    run = cat[second]
    assert list(run) == ["primary"]
    unfilled = [d for n, d in run.documents(fill="no") if n == "event"]
    filled = [d for n, d in run.documents(fill="yes") if n == "event"]
    assert [e["data"]["cam"] for e in unfilled] == [
        d["data"]["cam"] for n, d in recorder if n == "event" and "cam" in d["data"]
    ]
    for event, frame in zip(filled, cam.frames, strict=True):
        assert same(event["data"]["cam"], frame)
        assert event["filled"]["cam"] == unfilled[filled.index(event)]["data"]["cam"]
    with pytest.raises(ValueError, match="fill must be"):
        list(run.documents(fill="maybe"))
    lazy = run.primary.to_dask()
    np.testing.assert_array_equal(lazy["cam"][1].values, cam.frames[1])
    with pytest.raises(KeyError):
        databroker.catalog["nope"]


def test_broker_v2_and_back(db, RE_db):
    RE_db(bp.count([det1], num=1))
    assert db.v2[-1].metadata["start"]["plan_name"] == "count"
    assert db.v2.v1 is db


def test_facade_imports_only_the_client():
    code = (
        "import sys, databroker\n"
        "bad = [m for m in sys.modules if m.startswith(('bluebroker.server', "
        "'bluebroker.catalog', 'bluebroker.ingest', 'sqlalchemy', 'fastapi', 'uvicorn'))]\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
