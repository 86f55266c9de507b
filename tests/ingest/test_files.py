"""Replaying document files (JSON Lines, msgpack) into a catalog from the command line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import msgpack
import msgpack_numpy
import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor

from bluebroker.catalog import open_catalog
from bluebroker.cli import main
from bluebroker.ingest.files import LISTED, replay
from tests.compare import assert_run_matches


@pytest.fixture
def scan_docs(RE, recorder):
    RE.subscribe(recorder)
    RE(bp.scan([det1, det2], motor, 0, 1, 4))
    RE(bp.count([det1], num=3))
    return list(recorder)


def _jsonable(obj):
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError(type(obj))


def test_msgpack_file_replays_exactly(scan_docs, tmp_path, catalog, catalog_uri, capsys):
    path = tmp_path / "docs.msgpack"
    path.write_bytes(
        b"".join(msgpack.packb(list(pair), default=msgpack_numpy.encode) for pair in scan_docs)
    )
    assert (
        main(["ingest", "file", str(path), "--catalog", catalog_uri, "--path", "bmm/raw", "-q"])
        == 0
    )
    assert f"{len(scan_docs)} documents written" in capsys.readouterr().out
    cat = open_catalog(catalog_uri)
    starts = [d["uid"] for n, d in scan_docs if n == "start"]
    first = scan_docs[: next(i for i, (n, _) in enumerate(scan_docs) if n == "stop") + 1]
    assert_run_matches(cat["bmm/raw"][starts[0]], first)
    # A second replay is idempotent.
    assert (
        main(["ingest", "file", str(path), "--catalog", catalog_uri, "--path", "bmm/raw", "-q"])
        == 0
    )
    assert f"0 documents written, {len(scan_docs)} already present" in capsys.readouterr().out


def test_jsonl_with_a_bad_document(scan_docs, tmp_path, catalog, catalog_uri, capsys):
    lines = [json.dumps(pair, default=_jsonable) for pair in scan_docs]
    lines.insert(4, json.dumps(["event", {"uid": "broken"}]))
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["ingest", "file", str(path), "--catalog", catalog_uri, "-q"]) == 1
    out = capsys.readouterr()
    assert "refused docs.jsonl:5: event 'broken'" in out.err
    assert f"{len(scan_docs)} documents written, 0 already present, 1 refused" in out.out
    cat = open_catalog(catalog_uri)
    assert len(cat["raw"]) == 2
    emitted = [d["data"]["det1"] for n, d in scan_docs[-6:] if n == "event"]
    np.testing.assert_array_equal(cat["raw"][-1]["primary"]["data"]["det1"][:], emitted)


def test_not_a_document_file(tmp_path, capsys):
    path = tmp_path / "notes.jsonl"
    path.write_text('["start", {"uid": "a"\n')
    uri = f"sqlite:///{tmp_path}/c.db"
    assert main(["ingest", "file", str(path), "--catalog", uri, "-q"]) == 2
    assert "notes.jsonl:1: not JSON" in capsys.readouterr().err
    assert main(["ingest", "file", str(tmp_path / "nope.jsonl"), "--catalog", uri]) == 2
    assert "no such file" in capsys.readouterr().err


def test_console_script_shows_progress(scan_docs, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(p, default=_jsonable) + "\n" for p in scan_docs))
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    done = subprocess.run(
        [
            str(bin_dir / "bluebroker"),
            "ingest",
            "file",
            str(path),
            "--catalog",
            f"sqlite:///{tmp_path}/c.db",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ingest: 100%" in done.stderr  # the tqdm bar
    assert "documents written" in done.stdout


WRONG_KINDS = {
    "picture.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "is a PNG image"),
    "table.csv": (
        ("a,b,c\n" + "".join(f"{i},{2 * i},{3 * i}\n" for i in range(500))).encode(),
        "is text but not JSON Lines (it begins 'a,b,c')",
    ),
    "docs.jsonl.gz": (gzip.compress(b'["start", {}]\n'), "gzip-compressed file (gunzip it"),
    "rows.jsonl": (
        "".join(json.dumps({"x": i}) + "\n" for i in range(500)).encode(),
        "line 1 is an object with keys x (a single document",
    ),
    "numbers.msgpack": (
        b"".join(msgpack.packb(i) for i in range(500)),
        "not a msgpack stream of [name, doc] pairs",
    ),
    "triples.msgpack": (
        b"".join(msgpack.packb([1, 2, 3]) for _ in range(500)),
        "not a msgpack stream of [name, doc] pairs",
    ),
    "nested.jsonl": (b'[["start", {}], ["stop", {}]]\n', "line 1 is a list of 2 items"),
    "detector.h5": (b"\x89HDF\r\n\x1a\n" + bytes(500), "is an HDF5 file"),
}


@pytest.mark.parametrize("name", sorted(WRONG_KINDS))
def test_a_file_of_the_wrong_kind_is_one_line(name, scan_docs, tmp_path, capsys):
    """Refused whole, before a catalog is made or a good file beside it is written."""
    content, words = WRONG_KINDS[name]
    wrong = tmp_path / name
    wrong.write_bytes(content)
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(p, default=_jsonable) + "\n" for p in scan_docs))
    db = tmp_path / "new" / "catalog.db"
    code = main(["ingest", "file", str(good), str(wrong), "--catalog", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err, err
    assert str(wrong) in err
    assert not db.parent.exists()


def test_a_folder_or_a_device_is_one_line(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/c.db"
    assert main(["ingest", "file", str(tmp_path), "--catalog", uri]) == 2
    assert "is a folder" in capsys.readouterr().err
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # reading it would wait for a writer forever
    for path in (pipe, "/dev/zero"):
        assert main(["ingest", "file", str(path), "--catalog", uri]) == 2
        assert "is not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "c.db").exists()


def test_many_refusals_are_counted_not_listed(tmp_path, capsys):
    """Thousands of bad documents in a file of the right kind: twenty listed, all counted."""
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(["event", {"uid": f"e{i}"}]) + "\n" for i in range(3000)))
    uri = f"sqlite:///{tmp_path}/c.db"
    assert main(["ingest", "file", str(path), "--catalog", uri, "-q"]) == 1
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines[0] == f"created a new empty catalog at {tmp_path}/c.db"
    assert len([line for line in lines if line.startswith("refused ")]) == LISTED
    assert lines[-1] == f"... and {3000 - LISTED} more refused (-v lists them all)"
    assert len(lines) == LISTED + 2
    assert "0 documents written, 0 already present, 3000 refused" in out.out


def test_replay_keeps_a_bounded_report(tmp_path, catalog):
    from bluebroker.ingest import CatalogWriter

    path = tmp_path / "bad.msgpack"
    path.write_bytes(b"".join(msgpack.packb(["event", {"uid": f"e{i}"}]) for i in range(2500)))
    report = replay([path], CatalogWriter(catalog, "raw"), show_progress=False)
    assert report.refused == 2500 and len(report.rejected) == LISTED
    assert report.rejected[0][0] == "bad.msgpack:1"


def test_old_stream_resources_with_wrong_fields_are_refused_in_words(tmp_path, capsys):
    """Replayed files carry event-model 1.19.8-1.20 stream_resources; a broken one is refused
    saying which field is wrong, never 'could not be stored'."""
    import event_model

    run = event_model.compose_run()
    good = {
        "uid": "sr-good",
        "run_start": run.start_doc["uid"],
        "data_key": "cam",
        "spec": "AD_HDF5",
        "root": str(tmp_path),
        "resource_path": "cam.h5",
        "resource_kwargs": {"frame_per_point": 1},
    }
    broken = [
        ({k: v for k, v in good.items() if k != "uid"}, "'uid' must be a string (missing)"),
        ({**good, "uid": "sr-1", "root": 5}, "'root' must be a string (got int)"),
        ({**good, "uid": "sr-2", "spec": ["AD_HDF5"]}, "'spec' must be a string (got list)"),
        ({**good, "uid": "sr-3", "resource_kwargs": "x"}, "'resource_kwargs' must be a mapping"),
        ({**good, "uid": "sr-4", "resource_kwargs": {"path": 7}}, "('path') with something"),
    ]
    pairs = [["start", run.start_doc], ["stream_resource", good]]
    pairs += [["stream_resource", doc] for doc, _ in broken]
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    uri = f"sqlite:///{tmp_path}/c.db"
    assert main(["ingest", "file", str(path), "--catalog", uri, "-q"]) == 1
    out = capsys.readouterr()
    assert "2 documents written, 0 already present, 5 refused" in out.out
    refusals = [line for line in out.err.splitlines() if line.startswith("refused ")]
    assert len(refusals) == len(broken)
    for line, (_, words) in zip(refusals, broken, strict=True):
        assert "1.19.8-1.20 form" in line or "HDF5 dataset" in line, line
        assert words in line and "could not be stored" not in line, line


def test_an_endless_line_is_refused_before_it_is_parsed(tmp_path, capsys, monkeypatch):
    import bluebroker.ingest.files as files

    monkeypatch.setattr(files, "MAX_LINE", 1 << 20)
    path = tmp_path / "big.json"
    path.write_text('[["start", {"uid": "' + "x" * (2 << 20) + '"}]]')  # one JSON document
    uri = f"sqlite:///{tmp_path}/c.db"
    assert main(["ingest", "file", str(path), "--catalog", uri, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "big.json:1: a line longer than 1 MiB" in err, err
