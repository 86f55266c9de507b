"""The README's main job, end to end: `bluebroker demo` serves while it acquires, the talk's
example runs against it as written, Ctrl-C ends it in a moment with a consistent catalog, and
a restart goes on numbering scans."""

from __future__ import annotations

import re
import signal

import numpy as np

from bluebroker.catalog import open_catalog
from bluebroker.client import from_uri
from tests.processes import Running, free_port


def _demo(tmp_path, *args: str) -> Running:
    return Running(
        "demo",
        "--port",
        str(free_port()),
        "--catalog",
        f"sqlite:///{tmp_path}/catalog.db",
        "--data-dir",
        str(tmp_path / "files"),
        *args,
    )


def _assert_short_clean_exit(code: int, after: list[str]) -> None:
    text = "".join(after)
    assert code == 0, text
    assert "Traceback" not in text and "ERROR" not in text and "WARNING" not in text, text
    assert "stopped after" in after[-1], text
    assert len(after) <= 4, text


def test_demo_serves_what_it_acquires(tmp_path):
    # Detector files away from the catalog's folder (the default data root) stay readable.
    demo = Running(
        "demo",
        "--port",
        str(free_port()),
        "--catalog",
        f"sqlite:///{tmp_path}/catalog/catalog.db",
        "--data-dir",
        str(tmp_path / "detectors"),
        *("--runs", "4", "--interval", "0", "--keep-serving"),
    )
    try:
        url = re.search(r"at (http://\S+)", demo.wait_for("serving ")).group(1)
        demo.wait_for("still serving")
        assert "run 4:" in demo.output and "created a new empty catalog" in demo.output
        c = from_uri(url)
        values = c["bmm"]["raw"].values().last()["primary"]["data"]["det1"][:5]
        assert values.dtype == np.float64 and 1 <= len(values) <= 5
        cam = c["bmm"]["raw"].values()[1]["primary"]["data"]["cam"]
        assert cam.shape == (5, 64, 64) and cam[4].shape == (64, 64)
        demo.proc.send_signal(signal.SIGTERM)  # as a service manager stops it
        _assert_short_clean_exit(*demo.finish())
    finally:
        demo.close()


def test_ctrl_c_stops_the_demo_in_a_moment(tmp_path):
    demo = _demo(tmp_path, "--interval", "0")
    try:
        demo.wait_for("serving ")
        demo.wait_for("run 2:")  # acquiring without pause: the next run is under way
        demo.interrupt()
        code, after = demo.finish(timeout=20)
        _assert_short_clean_exit(code, after)
        assert "stopping" in after[0]
    finally:
        demo.close()
    runs = open_catalog(f"sqlite:///{tmp_path}/catalog.db")["bmm/raw"]
    assert len(runs) >= 2
    for _, run in runs.items_range():
        stop = run.metadata["stop"]
        assert stop is not None  # an interrupted run is closed too
        assert stop["exit_status"] in ("success", "abort")
    done = int(re.search(r"stopped after (\d+) run", after[-1]).group(1))
    statuses = [run.metadata["stop"]["exit_status"] for _, run in runs.items_range()]
    assert statuses.count("success") == done


def test_ctrl_c_twice_quits_at_once(tmp_path):
    demo = _demo(tmp_path, "--interval", "3600")
    try:
        demo.wait_for("run 1:")  # now waiting an hour for the next run
        demo.interrupt()
        demo.wait_for("stopping")
        demo.interrupt()
        code, _ = demo.finish(timeout=20)
        assert code in (0, 130), demo.output
        assert "Traceback" not in demo.output
    finally:
        demo.close()


def test_a_restart_goes_on_numbering_scans(tmp_path):
    outputs = []
    for _ in range(2):
        demo = _demo(tmp_path, "--runs", "2", "--interval", "0")
        try:
            code, _ = demo.finish(timeout=120)
        finally:
            demo.close()
        assert code == 0, demo.output
        outputs.append(demo.output)
    assert "created a new empty catalog" in outputs[0]
    assert "created a new empty catalog" not in outputs[1]
    said = [int(n) for n in re.findall(r"scan_id (\d+)", "".join(outputs))]
    assert said == [1, 2, 3, 4]
    runs = open_catalog(f"sqlite:///{tmp_path}/catalog.db")["bmm/raw"]
    scan_ids = [run.metadata["start"]["scan_id"] for _, run in runs.items_range()]
    assert scan_ids == [1, 2, 3, 4]
    assert runs[1].metadata["start"]["uid"] == runs.keys_range(0, 1)[0]


def test_simulated_detectors_name_absolute_files(RE, tmp_path, monkeypatch):
    """Given a relative folder, the demo's detectors still name their files absolutely, so
    a reader elsewhere (another folder, another process) finds them."""
    from bluesky.plans import count

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera, StreamHDF5Camera

    monkeypatch.chdir(tmp_path)
    (tmp_path / "files").mkdir()
    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    cam, scam = HDF5Camera("cam", "files"), StreamHDF5Camera("scam", "files")
    RE(count([cam, scam], num=3))
    monkeypatch.chdir("/")
    data = open_catalog(f"sqlite:///{tmp_path}/catalog.db")["bmm/raw"][-1]["primary"]["data"]
    np.testing.assert_array_equal(data["cam"][:], np.stack(cam.frames))
    np.testing.assert_array_equal(data["scam"][:], np.stack(scam.frames))
