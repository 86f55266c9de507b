"""Typical Databroker 1.x analysis scripts, run unchanged (as programs, with a config in
``~/.config/databroker``) against a live bluebroker server filled by a real RunEngine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor

from tests.devices import HDF5Camera

SCRIPTS = Path(__file__).parent / "legacy_scripts"


@pytest.fixture
def beamtime(server, RE_db, recorder, tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "databroker").mkdir(parents=True)
    (home / ".config" / "databroker" / "csx.yml").write_text(f"uri: {server}\ncatalog: csx/raw\n")
    cam = HDF5Camera("cam", tmp_path, shape=(8, 6))
    RE_db(bp.count([cam, det2], num=3))
    RE_db(bp.scan([det1], motor, -1, 1, 5))
    RE_db(bp.scan([det1, det2], motor, 0, 2, 7))
    starts = [d for n, d in recorder if n == "start"]
    return home, cam, starts


def _run(script, home, cwd):
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return dict(
        (line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in done.stdout.splitlines()
    ), done.stdout


def _events(recorder, uid):
    descs = {d["uid"] for n, d in recorder if n == "descriptor" and d["run_start"] == uid}
    return [d for n, d in recorder if n == "event" and d["descriptor"] in descs]


def test_table_summary(beamtime, recorder, tmp_path):
    home, _, starts = beamtime
    out, _ = _run("table_summary.py", home, tmp_path)
    events = _events(recorder, starts[-1]["uid"])
    assert out["plan"] == f"scan scan_id {starts[-1]['scan_id']} rows 7"
    assert float(out["det1_mean"]) == pytest.approx(np.mean([e["data"]["det1"] for e in events]))
    assert out["first_seq_num"] == "1" and out["time_dtype"] == "datetime64[ns]"


def test_images_from_an_hdf5_detector(beamtime, tmp_path):
    home, cam, _ = beamtime
    out, _ = _run("images_hdf5.py", home, tmp_path)
    assert out["frames"] == "3 shape (8, 6)"
    assert float(out["mean_of_means"]) == pytest.approx(np.mean([f.mean() for f in cam.frames]))
    assert int(out["stack_sum"]) == int(np.stack(cam.frames).sum())


def test_search_by_plan_and_time(beamtime, tmp_path):
    home, _, starts = beamtime
    _, stdout = _run("search_by_plan_and_time.py", home, tmp_path)
    found = [line.split()[1] for line in stdout.splitlines() if line.startswith("found")]
    assert found == [starts[2]["uid"], starts[1]["uid"]]  # both scans, newest first
    assert "none_in_2001 0" in stdout


def test_export_to_csv(beamtime, recorder, tmp_path):
    home, _, starts = beamtime
    _run("export_csv.py", home, tmp_path)
    for start in starts[1:]:
        df = pd.read_csv(tmp_path / f"scan_{start['scan_id']}.csv", index_col="seq_num")
        events = _events(recorder, start["uid"])
        assert list(df.index) == [e["seq_num"] for e in events]
        assert list(df["det1"]) == pytest.approx([e["data"]["det1"] for e in events])
