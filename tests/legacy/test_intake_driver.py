"""``intake.open_catalog('catalog.yml')`` with ``driver: bluebroker``: a catalog file written
as a user would, read through intake (the version current on PyPI) against a real server
holding runs of a real RunEngine, entries behaving as Databroker 1.x's BlueskyRun."""

from __future__ import annotations

import numpy as np
import pytest

intake = pytest.importorskip("intake")


@pytest.fixture
def served_runs(RE, tmp_path, recorder):
    from bluesky import plans as bp
    from ophyd.sim import det1, det2, motor

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera
    from bluebroker.server.run import background_server

    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    cam = HDF5Camera("cam", tmp_path, shape=(3, 4))
    RE.subscribe(CatalogWriter(catalog, "csx/raw"))
    RE.subscribe(recorder)
    runs = []
    for plan in (
        bp.scan([det1, det2], motor, -1, 1, 5, md={"sample": "Cu"}),
        bp.count([cam], num=2, md={"sample": "Fe"}),
    ):
        recorder.clear()
        RE(plan)
        runs.append(list(recorder))
    with background_server(catalog) as url:
        yield url, runs, np.stack(cam.frames)
    catalog.close()


def test_open_catalog_with_the_bluebroker_driver(served_runs, tmp_path):
    url, runs, frames = served_runs
    path = tmp_path / "catalog.yml"
    path.write_text(
        f"""
sources:
  csx:
    description: CSX raw data
    driver: bluebroker
    args:
      uri: {url}
      catalog: csx/raw
"""
    )
    cat = intake.open_catalog(str(path))
    assert "csx" in list(cat)
    runs_cat = cat["csx"]
    assert len(runs_cat) == 2
    scan_docs, cam_docs = runs
    scan_uid = scan_docs[0][1]["uid"]
    assert next(iter(runs_cat)) == cam_docs[0][1]["uid"]  # newest first, as 1.x listed them
    run = runs_cat[scan_uid]
    assert run.metadata["start"]["sample"] == "Cu"
    assert run.metadata["stop"]["exit_status"] == "success"
    events = [d for n, d in scan_docs if n == "event"]
    ds = run.primary.read()
    np.testing.assert_array_equal(ds["det1"].values, [e["data"]["det1"] for e in events])
    lazy = run.primary.to_dask()
    np.testing.assert_array_equal(lazy["det2"].values, [e["data"]["det2"] for e in events])
    assert [n for n, _ in run.documents()] == [n for n, _ in scan_docs]
    assert runs_cat[-1].metadata["start"]["uid"] == cam_docs[0][1]["uid"]
    assert runs_cat[1].metadata["start"]["uid"] == scan_uid  # scan_id 1
    found = runs_cat.search({"sample": "Fe"})
    assert list(found) == [cam_docs[0][1]["uid"]]
    cam_run = found[cam_docs[0][1]["uid"]]
    filled = [d for n, d in cam_run.canonical(fill="yes") if n == "event"]
    np.testing.assert_array_equal(np.stack([e["data"]["cam"] for e in filled]), frames)
    unfilled = [d for n, d in cam_run.canonical(fill="no") if n == "event"]
    assert all(isinstance(e["data"]["cam"], str) for e in unfilled)  # datum ids
    assert len(cat.csx.search({"sample": "nothing"})) == 0


def test_a_catalog_file_without_a_catalog_path_says_so(tmp_path):
    path = tmp_path / "catalog.yml"
    path.write_text(
        "sources:\n  csx:\n    driver: bluebroker\n    args:\n      uri: http://127.0.0.1:1\n"
        "      catalog: ''\n"
    )
    with pytest.raises(ValueError, match="needs catalog:"):
        intake.open_catalog(str(path))["csx"]
