"""``bluebroker ingest mongo``: runs of a mongo_normalized database (written by suitcase-mongo
from real RunEngine runs, on a real MongoDB-protocol server) migrated into a catalog."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .compare_legacy import assert_migrated


def _migrate(legacy_db, catalog, path="csx/raw", **kwargs):
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.mongo import MongoSource
    from bluebroker.ingest.mongo_migrate import migrate

    writer = CatalogWriter(catalog, path)
    with MongoSource(legacy_db.mds_uri, legacy_db.assets_uri, **kwargs) as source:
        return migrate(source, writer, show_progress=False)


def test_every_run_reads_back_as_emitted(legacy_runs, catalog):
    report = _migrate(legacy_runs["db"], catalog)
    assert not report.failures, report.failures
    assert report.runs_migrated == 4
    assert report.runs_without_stop == 1
    assert report.events == sum(1 for docs in legacy_runs["runs"] for n, _ in docs if n == "event")
    runs = catalog["csx/raw"]
    assert len(runs) == 4
    for docs in legacy_runs["runs"]:
        uid = next(d["uid"] for n, d in docs if n == "start")
        assert_migrated(runs[uid], docs)
    frames = legacy_runs["frames"]
    fe = runs[legacy_runs["runs"][1][0][1]["uid"]]
    np.testing.assert_array_equal(fe["primary"]["data"]["cam"].read(), frames[:4])
    old = runs[legacy_runs["runs"][3][0][1]["uid"]]
    assert list(old) == ["primary"]  # the descriptor without a name
    assert old.metadata["start"]["acquired"] == "2017-03-04T05:06:07.890000"
    np.testing.assert_array_equal(old["primary"]["data"]["cam"].read(), frames[4:])


def _cli(*argv):
    from bluebroker.cli import main

    return main(["ingest", "mongo", *argv])


def test_command_migrates_resumes_and_reports(legacy_runs, catalog, catalog_uri, tmp_path, capsys):
    db = legacy_runs["db"]
    docs = legacy_runs["runs"][0]
    # What an interrupted migration leaves: the first run's start, descriptors and part of
    # its events, no stop.
    from bluebroker.ingest import CatalogWriter

    partial = [(n, d) for n, d in docs if n in ("start", "descriptor")]
    partial += [(n, d) for n, d in docs if n == "event"][:5]
    CatalogWriter(catalog, "csx/raw").write_many(partial)
    report = tmp_path / "report.json"
    args = [
        "--uri",
        db.mds_uri,
        "--assets-uri",
        db.assets_uri,
        "--catalog",
        catalog_uri,
        "--data-root",
        str(tmp_path),
        "--path",
        "csx/raw",
        "--report",
        str(report),
        "-q",
    ]
    assert _cli(*args) == 0
    out = capsys.readouterr().out
    assert "4 runs migrated (1 without a stop document), 0 already complete, 0 failed" in out
    body = json.loads(report.read_text())
    assert body["runs_migrated"] == 4 and body["failures"] == []
    assert body["documents_present"] == len(partial)
    runs = catalog["csx/raw"]
    for run_docs in legacy_runs["runs"]:
        assert_migrated(runs[run_docs[0][1]["uid"]], run_docs)
    # Again: the three complete runs are skipped unread, the stopless one is looked at again
    # and nothing is written twice.
    assert _cli(*args) == 0
    body = json.loads(report.read_text())
    assert (body["runs_skipped"], body["runs_migrated"], body["documents_written"]) == (3, 1, 0)
    assert len(catalog["csx/raw"]) == 4


def test_selection_by_time_and_query(legacy_runs, catalog):
    starts = [docs[0][1] for docs in legacy_runs["runs"]]
    report = _migrate(legacy_runs["db"], catalog, since=starts[2]["time"], until=1e12)
    assert report.runs_selected == 2 and report.runs_migrated == 2
    assert sorted(catalog["csx/raw"]) == sorted(s["uid"] for s in starts[2:])
    report = _migrate(legacy_runs["db"], catalog, path="csx/fe", query={"sample": "Fe"})
    assert report.runs_selected == 1 and not report.failures
    assert list(catalog["csx/fe"]) == [starts[1]["uid"]]


def test_root_map_rewrites_moved_files(legacy_runs, catalog, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    moved.mkdir()
    for h5 in tmp_path.glob("cam_*.h5"):
        shutil.move(h5, moved / h5.name)
    docs = legacy_runs["runs"][1]
    root = next(d["root"] for n, d in docs if n == "resource")
    report = _migrate(legacy_runs["db"], catalog, root_map={root: str(moved)})
    assert not report.failures, report.failures
    run = catalog["csx/raw"][docs[0][1]["uid"]]
    np.testing.assert_array_equal(run["primary"]["data"]["cam"].read(), legacy_runs["frames"][:4])
    (resource,) = [d for n, d in run.documents() if n == "resource"]
    assert resource["root"] == str(moved)


def test_a_bad_run_is_reported_and_the_others_migrated(legacy_runs, catalog):
    db = legacy_runs["db"]
    bad = legacy_runs["runs"][2][0][1]["uid"]
    db.mds["event"].update_many(
        {
            "descriptor": {
                "$in": [d["uid"] for d in db.mds["event_descriptor"].find({"run_start": bad})]
            }
        },
        {"$unset": {"seq_num": ""}},
    )
    report = _migrate(db, catalog)
    assert report.runs_migrated == 3
    (failure,) = report.failures
    assert failure.uid == bad and "seq_num" in failure.reasons[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a.__setitem__(1, a[1].rsplit("/", 1)[0] + "/?directConnection=true"),
            "must name the database",
        ),
        (
            lambda a: a.__setitem__(1, "mongodb://127.0.0.1:1/mds?serverSelectionTimeoutMS=300"),
            "cannot reach the MongoDB server",
        ),
        (lambda a: a.__setitem__(1, "http://example/mds"), "must be a mongodb:// URI"),
        (lambda a: a.extend(["--query", "[1]"]), "--query must be a JSON object"),
        (lambda a: a.extend(["--query", "{bad"]), "--query is not JSON"),
        (lambda a: a.extend(["--since", "yesterday"]), "--since takes a date"),
        (
            lambda a: a.extend(["--since", "2020-01-02", "--until", "2020-01-01"]),
            "--until must be later",
        ),
        (lambda a: a.extend(["--root-map", "nothing"]), "--root-map takes OLD=NEW"),
        (
            lambda a: a.extend(["--query", '{"$or": [{"$where": "sleep(100)"}]}']),
            "may not run JavaScript",
        ),
        (lambda a: a.extend(["--query", '{"time": {"$bogus": 1}}']), "MongoDB refused --query"),
    ],
)
def test_operator_mistakes_are_one_line(legacy_db, tmp_path, capsys, change, message):
    args = [
        "--uri",
        legacy_db.mds_uri,
        "--catalog",
        f"sqlite:///{tmp_path}/c.db",
        "--path",
        "csx/raw",
        "--report",
        str(tmp_path / "r.json"),
        "-q",
    ]
    change(args)
    assert _cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err


def test_a_database_that_is_not_a_metadatastore(mongo_uri, tmp_path, capsys):
    from .mongo_server import with_database

    args = [
        "--uri",
        with_database(mongo_uri, "nothing_here"),
        "--catalog",
        f"sqlite:///{tmp_path}/c.db",
        "--path",
        "csx/raw",
        "-q",
    ]
    assert _cli(*args) == 2
    assert "no run_start collection" in capsys.readouterr().err
    assert not (tmp_path / "c.db").exists()  # refused before a catalog was made


def test_hostile_documents_fail_their_run_alone(legacy_runs, catalog):
    """Runs whose documents are malformed or point outside the data roots are listed with a
    reason; the rest migrate, and nothing is read outside the data roots."""
    db = legacy_runs["db"]
    runs = legacy_runs["runs"]
    cam_uid, wave_uid = runs[1][0][1]["uid"], runs[2][0][1]["uid"]
    db.assets["resource"].update_many({"run_start": cam_uid}, {"$set": {"root": "/etc"}})
    wave_descriptors = [d["uid"] for d in db.mds["event_descriptor"].find({"run_start": wave_uid})]
    db.mds["event"].update_one(
        {"descriptor": wave_descriptors[0]}, {"$set": {"data": "not a mapping"}}
    )
    db.mds["run_start"].insert_many(
        [
            {"uid": "../../escape", "time": 1.0, "scan_id": 7},
            {"uid": 12345, "time": 2.0},
            {"uid": "no-time-at-all"},
        ]
    )
    report = _migrate(db, catalog)
    failed = {f.uid: " ".join(f.reasons) for f in report.failures}
    assert set(failed) == {cam_uid, wave_uid, "../../escape", "12345", "no-time-at-all"}
    assert "data root" in failed[cam_uid], failed[cam_uid]
    assert "'data' that is str, not a mapping" in failed[wave_uid], failed[wave_uid]
    assert report.runs_migrated == 2  # the scan and the old run
    stored = catalog["csx/raw"]
    assert sorted(stored) == sorted([runs[i][0][1]["uid"] for i in (0, 1, 3)])
    # What of a failed run got in stays without its stop: fixed, the next run retries it
    assert stored[cam_uid].stop is None
    db.assets["resource"].update_many(
        {"run_start": cam_uid},
        {"$set": {"root": next(d["root"] for n, d in runs[1] if n == "resource")}},
    )
    again = _migrate(db, catalog)
    assert cam_uid not in {f.uid for f in again.failures}
    assert_migrated(catalog["csx/raw"][cam_uid], runs[1])
