"""Databroker 2.0.x's v1 facade (``from_uri(url)['bmm']['raw'].v1``), which is built on Tiled's
client, against a live bluebroker: ``db[-1].table()`` and searches by plan and by time.

Databroker 2 is a package named ``databroker``, as bluebroker's own legacy facade is, so it
cannot share bluebroker's environment: it runs in the peer environment that
``python benchmarks/peer_env.py`` makes (``.bench/peer-venv``: tiled 0.2.20,
bluesky-tiled-plugins 2.0.12, databroker 2.0.2), or the Python named by
``$BLUEBROKER_PEER_PYTHON``. Without one, these tests are skipped and say how to make it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CI

from .conftest import events, starts

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(os.environ.get("BLUEBROKER_PEER_PYTHON", ROOT / ".bench/peer-venv/bin/python"))

SCRIPT = """
import json, sys, time
import databroker
from tiled.client import from_uri

db = from_uri(sys.argv[1])["bmm"]["raw"].v1
newest = db[-1]
table = db[int(sys.argv[2])].table()
now = time.time()
print(json.dumps({
    "version": databroker.__version__,
    "newest": newest.start["uid"],
    "index": table.index.name,
    "columns": list(table.columns),
    "det1": table["det1"].tolist(),
    "seq_num": table.index.tolist(),
    "counts": [h.start["uid"] for h in db(plan_name="count")],
    "since": [h.start["uid"] for h in db(since=now - 3600, until=now + 60)],
    "before": [h.start["uid"] for h in db(until="2001-01-01")],
}))
"""


@pytest.fixture
def peer_python() -> Path:
    if not PEER.exists():
        why = (
            f"no peer environment at {PEER}: make it with `python benchmarks/peer_env.py` "
            "(scripts/test does; or set BLUEBROKER_PEER_PYTHON)"
        )
        if CI:  # CI runs scripts/test, which makes it: missing means something broke
            pytest.fail(why)
        pytest.skip(why)
    return PEER


def test_v1_facade_over_tiled_client(peer_python, tiled_url, beamline):
    runs = starts(beamline)
    uids = list(runs)
    scan = runs[uids[0]]
    done = subprocess.run(
        [str(peer_python), "-c", SCRIPT, tiled_url, str(scan["scan_id"])],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("TILED_")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("2.0.")
    assert got["newest"] == uids[-1]
    evs = events(beamline[uids[0]])
    assert got["index"] == "seq_num" and got["seq_num"] == [e["seq_num"] for e in evs]
    assert set(got["columns"]) == {"time", "det1", "det2", "motor", "motor_setpoint"}
    assert got["det1"] == [e["data"]["det1"] for e in evs]
    assert got["counts"] == [u for u, s in runs.items() if s["plan_name"] == "count"]
    assert sorted(got["since"]) == sorted(uids)
    assert got["before"] == []
