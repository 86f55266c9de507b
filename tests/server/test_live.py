"""Live updates from one server: websocket and SSE messages, replay with start=, resuming
without gaps, the client's subscriptions and live tables, bad subscriptions, slow subscribers."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import SynSignal, det1, det2, motor
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bluebroker.client import NotFoundError, from_uri
from bluebroker.ingest import CatalogWriter
from bluebroker.server.run import background_server


def ws_url(url: str, path: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return (
        url.replace("http://", "ws://")
        + f"/api/v1/stream/single/{path}"
        + (f"?{query}" if query else "")
    )


def in_thread(RE, plan) -> tuple[threading.Thread, list]:
    """Run a plan on a RunEngine from a background thread, as a beamline does meanwhile."""
    out: list = []
    thread = threading.Thread(target=lambda: out.extend(RE(plan)), daemon=True)
    thread.start()
    return thread, out


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_catalog_run_and_table_messages(catalog, served, RE):
    """Every level says what changed, with per-node sequence numbers from 1; a table's
    messages carry the appended rows, equal to what the table reads afterwards."""
    writer = CatalogWriter(catalog, "bmm/raw")
    with connect(ws_url(served, "bmm/raw")) as ws:
        schema = json.loads(ws.recv(timeout=10))
        assert schema["type"] == "schema" and schema["sequence"] == 0
        (uid,) = RE(bp.scan([det1, det2], motor, -1, 1, 7), writer)
        created, stopped = json.loads(ws.recv(timeout=10)), json.loads(ws.recv(timeout=10))
    assert (created["type"], created["sequence"], created["uid"]) == ("run-created", 1, uid)
    assert (stopped["type"], stopped["sequence"], stopped["exit_status"]) == (
        "run-stopped",
        2,
        "success",
    )
    assert stopped["num_events"] == {"primary": 7}

    with connect(ws_url(served, f"bmm/raw/{uid}", start=1)) as ws:
        msgs = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
    assert [m["type"] for m in msgs] == ["schema", "stream-created", "run-stopped"]
    assert msgs[1]["name"] == "primary" and msgs[0]["sequence"] == 2

    with connect(ws_url(served, f"bmm/raw/{uid}/primary/data", start=1)) as ws:
        schema = json.loads(ws.recv(timeout=10))
        msgs = [json.loads(ws.recv(timeout=10)) for _ in range(schema["sequence"])]
    rows = [m for m in msgs if m["type"] == "rows-appended"]
    assert [m["sequence"] for m in msgs] == list(range(1, schema["sequence"] + 1))
    assert msgs[-1]["type"] == "run-stopped"
    table = from_uri(served)["bmm"]["raw"][uid]["primary"]["data"].read()
    assert [s for m in rows for s in m["data"]["seq_num"]] == table.index.tolist()
    np.testing.assert_array_equal(
        np.concatenate([m["data"]["motor"] for m in rows]), table["motor"].to_numpy()
    )
    assert schema["columns"] == ["seq_num", *table.columns]


def test_resume_with_start_has_no_gap_and_no_duplicate(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=12), writer)
    path = f"bmm/raw/{uid}/primary/data/det1"
    with connect(ws_url(served, path, start=1, envelope_format="msgpack")) as ws:
        from bluebroker import packing

        assert packing.unpackb(ws.recv(timeout=10))["type"] == "schema"
        first = [packing.unpackb(ws.recv(timeout=10)) for _ in range(5)]
    resume = first[-1]["sequence"] + 1
    with connect(ws_url(served, path, start=resume, envelope_format="msgpack")) as ws:
        packing.unpackb(ws.recv(timeout=10))
        rest = [packing.unpackb(ws.recv(timeout=10)) for _ in range(13 - 5)]
    got = first + rest
    assert [m["sequence"] for m in got] == list(range(1, 14))
    appended = [m for m in got if m["type"] == "rows-appended"]
    # small numeric appends travel as msgpack lists, their dtype named beside them
    assert isinstance(first[0]["data"], list) and first[0]["dtype"] == "<f8"
    values = np.concatenate([np.asarray(m["data"], dtype=m["dtype"]) for m in appended])
    stored = from_uri(served)["bmm"]["raw"][uid]["primary"]["data"]["det1"][:]
    assert values.dtype == stored.dtype
    np.testing.assert_array_equal(values, stored)


def test_server_sent_events_resume_with_last_event_id(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=6), writer)
    url = f"{served}/api/v1/stream/single/bmm/raw/{uid}/primary/data"

    def events(headers, params, n):
        out = []
        with httpx.stream("GET", url, headers=headers, params=params, timeout=10) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            event = {}
            for line in r.iter_lines():
                if not line:
                    out.append(event)
                    event = {}
                    if len(out) == n:
                        break
                    continue
                key, _, value = line.partition(": ")
                event[key] = value
        return out

    first = events({}, {"start": 1}, 4)
    assert first[0]["event"] == "schema"
    assert [e["id"] for e in first[1:]] == ["1", "2", "3"]
    rest = events({"Last-Event-ID": first[-1]["id"]}, {}, 5)
    assert [e["id"] for e in rest[1:]] == ["4", "5", "6", "7"]
    assert rest[-1]["event"] == "run-stopped"
    assert json.loads(rest[1]["data"])["seq_nums"] == [4, 4]


def test_client_live_table_equals_the_final_table(catalog, served, RE):
    """A scientist opens a run while it is acquired: subscribe to the catalog, then follow
    the new run's primary stream; the live view ends equal to the table read afterwards."""
    writer = CatalogWriter(catalog, "bmm/raw")
    raw = from_uri(served)["bmm"]["raw"]
    created = []
    with raw.subscribe(created.append):
        RE.subscribe(writer)
        thread, _ = in_thread(RE, bp.scan([det1, det2], motor, -1, 1, 40, per_step=_slow_step))
        wait_until(lambda: any(u.type == "run-created" for u in created))
        uid = created[0]["uid"]
        run = raw[uid]
        # the first stream-created, while the run goes on (a list of every update would wait
        # for the stop, and the live view would then only replay)
        stream = next(u for u in run.updates(start=1, timeout=20) if u.type == "stream-created")
        assert stream["name"] == "primary"
        live = run["primary"].live()
        grew = []
        wait_until(lambda: grew.append(len(live)) or live.stopped)
        thread.join(timeout=30)
        live.close()
    final = raw[uid]["primary"]["data"].read()
    assert len(set(grew)) > 2  # it was seen growing, not only at the end
    live_df = live.read()
    assert live_df.index.tolist() == list(range(1, 41))
    for column in final.columns:
        np.testing.assert_array_equal(live_df[column].to_numpy(), final[column].to_numpy())
    ds = live.to_xarray()
    np.testing.assert_array_equal(ds["det1"].values, final["det1"].to_numpy())


def _slow_step(detectors, step, pos_cache):
    from bluesky import plan_stubs as bps

    yield from bps.one_nd_step(detectors, step, pos_cache)
    yield from bps.sleep(0.02)


def test_updates_iterator_ends_when_the_run_stops(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=3), writer)
    stream = from_uri(served)["bmm"]["raw"][uid]["primary"]
    updates = list(stream.updates(start=1, timeout=10))
    assert [u.type for u in updates] == ["rows-appended"] * 3 + ["run-stopped"]
    assert [u["seq_nums"] for u in updates[:3]] == [[1, 1], [2, 2], [3, 3]]
    assert updates[0]["links"]["data"].endswith(f"/bmm/raw/{uid}/primary/data")


def test_bad_subscriptions_say_what_to_fix(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=1), writer)
    with connect(ws_url(served, "bmm/raw/nope")) as ws, pytest.raises(ConnectionClosed) as err:
        ws.recv(timeout=10)
    assert err.value.rcvd.code == 4404 and "not found" in err.value.rcvd.reason
    with (
        connect(ws_url(served, "bmm/raw", envelope_format="xml")) as ws,
        pytest.raises(ConnectionClosed) as err,
    ):
        ws.recv(timeout=10)
    assert err.value.rcvd.code == 4400 and "json or msgpack" in err.value.rcvd.reason
    r = httpx.get(f"{served}/api/v1/stream/single/bmm")
    assert r.status_code == 400 and "subscribe to a catalog of runs" in r.json()["detail"]
    r = httpx.get(f"{served}/api/v1/stream/single/bmm/raw", headers={"Last-Event-ID": "x"})
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["detail"]
    from bluebroker.client.live import Subscription

    with pytest.raises(NotFoundError, match="no stream 'dark'"):
        Subscription(from_uri(served)._transport, ("bmm", "raw", uid, "dark")).start()


def test_api_key_guards_live_updates(catalog, RE):
    with background_server(catalog, api_key="secret") as url:
        with connect(ws_url(url, "bmm/raw")) as ws, pytest.raises(ConnectionClosed) as err:
            ws.recv(timeout=10)
        assert err.value.rcvd.code == 1008 and "API key" in err.value.rcvd.reason
        assert httpx.get(f"{url}/api/v1/stream/single/bmm/raw").status_code == 401
        CatalogWriter(catalog, "bmm/raw")
        with connect(ws_url(url, "bmm/raw", api_key="secret")) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "schema"


def test_slow_subscriber_is_dropped_without_slowing_others(catalog, RE):
    """A subscriber that stops reading falls behind, is disconnected with a reason that
    says where to resume, and neither the writer nor a reading subscriber waits for it."""
    writer = CatalogWriter(catalog, "bmm/raw")
    cam = SynSignal(func=lambda: np.random.default_rng().random((256, 256)), name="cam")
    gate = threading.Event()
    with background_server(catalog, live_queue_limit=5) as url:
        raw = from_uri(url)["bmm"]["raw"]
        RE.subscribe(writer)
        thread, out = in_thread(RE, _frames_after(gate, cam, 60))
        wait_until(lambda: len(raw) == 1 and "primary" in raw.values().last())
        uid = raw.values().last().uid
        fast = []
        sub = raw[uid]["primary"]["data"]["cam"].subscribe(fast.append)
        with connect(ws_url(url, f"bmm/raw/{uid}/primary/data/cam"), max_size=None) as slow:
            json.loads(slow.recv(timeout=10))
            started = time.monotonic()
            gate.set()  # acquire while the slow one reads nothing
            thread.join(timeout=60)
            acquiring = time.monotonic() - started
            wait_until(lambda: len(fast) >= 61)
            with pytest.raises(ConnectionClosed) as err:
                while True:
                    slow.recv(timeout=10)
            reason = err.value.rcvd
        sub.close()
    assert out == [uid] and acquiring < 30
    assert reason.code == 4429 and "reconnect with start=" in reason.reason
    assert [u.sequence for u in fast] == list(range(2, 63))
    rows = [u for u in fast if u.type == "rows-appended"]
    assert len(rows) == 60 and all(u.data.shape == (1, 256, 256) for u in rows)


def _frames_after(gate, cam, n):
    """One frame, then n more once ``gate`` opens: a run that is going while tests watch."""
    from bluesky import plan_stubs as bps

    yield from bps.open_run()
    yield from bps.trigger_and_read([cam])
    while not gate.is_set():
        yield from bps.sleep(0.02)
    for _ in range(n):
        yield from bps.trigger_and_read([cam])
    yield from bps.close_run()


def test_sqlite_changes_written_elsewhere_are_noticed(tmp_path, RE):
    """A server reading a SQLite file that another writer fills (its own engine, as another
    process has) learns of the changes by tailing the change log."""
    from bluebroker.catalog import open_catalog

    uri = f"sqlite:///{tmp_path}/shared.db"
    serving, writing = open_catalog(uri), open_catalog(uri)
    writer = CatalogWriter(writing, "bmm/raw")
    with background_server(serving) as url:
        seen = []
        with from_uri(url)["bmm"]["raw"].subscribe(seen.append):
            (uid,) = RE(bp.count([det1], num=2), writer)
            wait_until(lambda: len(seen) >= 2, timeout=10)
    assert [(u.type, u["uid"]) for u in seen] == [("run-created", uid), ("run-stopped", uid)]
    serving.close()
    writing.close()


def test_msgpack_lists_come_back_with_their_dtypes():
    from bluebroker import packing
    from bluebroker.client.live import Update
    from bluebroker.server.live import encode

    data = {
        "seq_num": np.array([7, 8]),
        "x": np.array([1.5, 2.5], dtype="f4"),
        "n": np.array([1, 2], dtype="u1"),
        "image": np.zeros((2, 80, 80), dtype="u2"),  # too big for a list: stays an array
    }
    msg = {"type": "rows-appended", "sequence": 3, "data": data}
    msg["dtypes"] = {k: v.dtype.str for k, v in data.items()}
    wire = packing.unpackb(encode(msg, "msgpack"))
    assert isinstance(wire["data"]["x"], list) and isinstance(wire["data"]["image"], np.ndarray)
    got = Update("rows-appended", 3, wire).data
    for name, values in data.items():
        assert got[name].dtype == values.dtype
        np.testing.assert_array_equal(got[name], values)


def _guide_example(url: str) -> str:
    """The user guide's live example, as printed, aimed at ``url``."""
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "user-guide.md").read_text()
    section = guide.split("## Watch runs as they are acquired", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "updates(start=1)" in code and "wait_for(None)" in code
    return code.replace("http://localhost:8000", url)


def test_user_guide_live_example_runs_to_the_end_of_a_run(catalog, served, RE, capsys):
    """The guide's example, exactly as written: during a run it follows the run to its stop
    (before, run-stopped raised KeyError), and on the stopped run it replays and ends."""
    writer = CatalogWriter(catalog, "bmm/raw")
    RE.subscribe(writer)
    thread, out = in_thread(RE, bp.scan([det1], motor, -1, 1, 12, per_step=_slow_step))
    raw = from_uri(served)["bmm"]["raw"]
    wait_until(lambda: len(raw) == 1 and "primary" in raw.values().last())
    code = _guide_example(served)
    started = time.monotonic()
    exec(code, {})  # the documented example, run as a user would
    during = capsys.readouterr().out.splitlines()
    thread.join(timeout=30)
    exec(code, {})  # again, on the stopped run
    after = capsys.readouterr().out.splitlines()
    assert time.monotonic() - started < 60
    for lines in (during, after):
        rows = [line for line in lines if line.split()[1:2] != ["run-stopped"]]
        assert len(rows) == 12 and lines[-1].endswith("run-stopped")
    assert during[-1] == after[-1] == "13 run-stopped" and out


def test_waiting_on_a_stopped_run_returns_or_raises_at_once(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=3), writer)
    stream = from_uri(served)["bmm"]["raw"][uid]["primary"]
    started = time.monotonic()
    assert list(stream.updates(timeout=10)) == []  # stopped, nothing to replay: ends at once
    assert [u.type for u in stream.updates(start=4, timeout=10)] == ["run-stopped"]
    with stream.live() as live:
        assert len(live.wait_for(3)) == 3
        assert live.wait_for(None).stopped
        with pytest.raises(ValueError, match="stopped with 3 rows"):
            live.wait_for(4)
    assert time.monotonic() - started < 5
