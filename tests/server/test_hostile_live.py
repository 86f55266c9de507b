"""The live routes against clients that send nonsense, read slowly or not at all, or come and
go by the dozen: every refusal says what to do instead, and the server keeps serving the
others without losing or repeating a message. Also: one message per row range for detectors
that speak stream_resource/stream_datum, and no change missed while a topic is being set up."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from contextlib import contextmanager
from urllib.parse import quote, urlencode

import event_model
import httpx
import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import SynSignal, det1
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bluebroker import packing
from bluebroker.client import BadRequestError, from_uri
from bluebroker.client.live import Subscription
from bluebroker.ingest import CatalogWriter
from bluebroker.ingest.simulated import StreamHDF5Camera
from bluebroker.server.run import background_server
from tests.conftest import Recorder
from tests.server.test_live import _frames_after, in_thread, wait_until


def ws_url(url: str, path: str, **params) -> str:
    base = url.replace("http://", "ws://") + "/api/v1/stream/single/" + quote(path, safe="/%")
    return base + (f"?{urlencode(params)}" if params else "")


def replay(url: str, path: str, **params) -> list[dict]:
    """Every message of a node from start=1 up to its sequence at connection time."""
    decode = packing.unpackb if params.get("envelope_format") == "msgpack" else json.loads
    with connect(ws_url(url, path, start=1, **params), max_size=None) as ws:
        schema = decode(ws.recv(timeout=10))
        return [decode(ws.recv(timeout=10)) for _ in range(schema["sequence"])]


def closed_with(url: str) -> tuple[int, str]:
    """The close code and reason a websocket subscription gets (it must get one)."""
    with connect(url, max_size=None) as ws, pytest.raises(ConnectionClosed) as err:
        while True:
            ws.recv(timeout=10)
    return err.value.rcvd.code, err.value.rcvd.reason


@contextmanager
def server_and_app(catalog, monkeypatch, **limits):
    """A real server with create_app's ``limits``, and the app behind it (to look at its
    live hub)."""
    import bluebroker.server.run as run

    apps = []
    real = run.create_app

    def create_app(*args, **kwargs):
        apps.append(real(*args, **kwargs, **limits))
        return apps[-1]

    monkeypatch.setattr(run, "create_app", create_app)
    with background_server(catalog) as url:
        yield url, apps[0]


def subscribers(app) -> int:
    hub = app.state.hub
    return 0 if hub is None else sum(len(t.subscribers) for t in hub.topics.values())


# -- one message per row range ----------------------------------------------------------------


def _row_ranges(msgs: list[dict]) -> list[tuple[int, int]]:
    return [(m["start_row"], m["stop_row"]) for m in msgs if m["type"] == "rows-appended"]


def test_stream_datum_detector_gives_one_message_per_row(catalog, served, RE, tmp_path):
    """A step scan of a stream_datum detector and an ordinary one, written document by
    document (as RE.subscribe does) and in one batch (as Kafka and HTTP do): each row is
    announced once, by the event that completes it, on the stream, its table and columns;
    the table's message carries the in-event values and the detector column its frames."""
    writer = CatalogWriter(catalog, "bmm/raw")
    scam = StreamHDF5Camera("scam", tmp_path, shape=(3, 4), dtype="float32")
    (one_by_one,) = RE(bp.count([scam, det1], num=3), writer)
    recorded = Recorder()
    (batched,) = RE(bp.count([scam, det1], num=3), recorded)
    writer.write_many(recorded)
    for uid, frames in ((one_by_one, scam.frames[:3]), (batched, scam.frames[3:])):
        stream = replay(served, f"bmm/raw/{uid}/primary")
        table = replay(served, f"bmm/raw/{uid}/primary/data")
        column = replay(served, f"bmm/raw/{uid}/primary/data/scam", envelope_format="msgpack")
        for msgs in (stream, table):
            assert _row_ranges(msgs) == [(0, 1), (1, 2), (2, 3)]
            assert [m["sequence"] for m in msgs] == list(range(1, len(msgs) + 1))
            assert msgs[-1]["type"] == "run-stopped"
        rows = [m for m in table if m["type"] == "rows-appended"]
        stored = from_uri(served)["bmm"]["raw"][uid]["primary"]["data"].read()
        for name in ("det1", "time"):  # the event's values, not the blanks before it came
            assert [v for m in rows for v in m["data"][name]] == stored[name].tolist()
        assert _row_ranges(column) == [(0, 1), (1, 2), (2, 3)]
        got = np.concatenate([np.asarray(m["data"]) for m in column[:3]])
        np.testing.assert_array_equal(got, np.stack(frames))


def test_stream_without_events_announces_its_rows_once(catalog, served, RE, tmp_path):
    """A fly scan's collect: stream_datums and no events. The first one's rows are announced
    when a second one shows that no event follows, the rest as they come; a single
    stream_datum's rows are announced at the stop, before run-stopped."""
    writer = CatalogWriter(catalog, "bmm/raw")
    scam = StreamHDF5Camera("scam", tmp_path, shape=(3, 4), dtype="float32")
    found = []
    for merge in (False, True):
        recorded = Recorder()
        (uid,) = RE(bp.count([scam], num=3), recorded)
        docs = [(n, d) for n, d in recorded if n != "event"]
        if merge:  # one stream_datum for the three frames
            datums = [d for n, d in docs if n == "stream_datum"]
            one = dict(datums[0], seq_nums={"start": 1, "stop": 4}, indices={"start": 0, "stop": 3})
            docs = [(n, d) for n, d in docs if n != "stream_datum" or d is datums[0]]
            docs = [(n, one if d is datums[0] else d) for n, d in docs]
        for pair in docs:
            writer(*pair)
        found.append(replay(served, f"bmm/raw/{uid}/primary/data/scam"))
    assert _row_ranges(found[0]) == [(0, 2), (2, 3)]
    assert _row_ranges(found[1]) == [(0, 3)]
    for msgs in found:
        assert msgs[-1]["type"] == "run-stopped"
        values = np.concatenate([np.asarray(m["data"]) for m in msgs[:-1]])
        assert values.shape == (3, 3, 4)


# -- no gap while a topic is set up --------------------------------------------------------------


def test_a_change_committed_while_the_topic_is_set_up_is_delivered(catalog, RE, monkeypatch):
    """The hub reads where a node stands in a worker thread; a change committed meanwhile
    must reach the subscriber (before, its notice found no topic and was dropped, and a
    subscriber of a quiet node waited forever)."""
    from bluebroker.server.live import Hub

    writer = CatalogWriter(catalog, "bmm/raw")
    real_last, real_notice = Hub._last_seq, Hub._notice
    noticed: list = []
    written: list[str] = []

    def notice(self, changes):
        real_notice(self, changes)
        noticed.append(changes)

    def last_seq(self, view):
        found = real_last(self, view)
        if view.scope == "catalog" and not written:
            noticed.clear()
            start = event_model.compose_run()
            writer("start", start.start_doc)  # committed after the read, before the topic
            written.append(start.start_doc["uid"])
            # the hub's loop has had both notices meanwhile: the writer's own, in this
            # process, and the one of the feed's source (the SQLite tail or NOTIFY)
            wait_until(lambda: len(noticed) >= 2, timeout=10)
        return found

    monkeypatch.setattr(Hub, "_notice", notice)
    monkeypatch.setattr(Hub, "_last_seq", last_seq)
    with background_server(catalog) as url, connect(ws_url(url, "bmm/raw")) as ws:
        assert json.loads(ws.recv(timeout=10))["sequence"] == 0
        created = json.loads(ws.recv(timeout=10))
    assert (created["type"], created["sequence"], created["uid"]) == ("run-created", 1, written[0])


# -- what a client sends --------------------------------------------------------------------------


BAD_STARTS = ["-1", "abc", "1.5", "1e3", "+2", " 3", "9" * 25, "4"]  # "4": beyond sequence 2


def test_bad_start_and_last_event_id_say_what_to_use(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    RE(bp.count([det1], num=1), writer)  # the catalog's sequence is now 2
    for start in BAD_STARTS:
        code, reason = closed_with(ws_url(served, "bmm/raw", start=start))
        assert code == 4400 and "start" in reason, (start, code, reason)
        r = httpx.get(f"{served}/api/v1/stream/single/bmm/raw", params={"start": start})
        assert r.status_code == 400 and "start" in r.json()["detail"], (start, r.text)
    code, reason = closed_with(ws_url(served, "bmm/raw", start=9))
    assert "sequence 2" in reason and "start=1 to 3" in reason
    for last in ["-5", "x", "3", "9" * 30]:
        r = httpx.get(f"{served}/api/v1/stream/single/bmm/raw", headers={"Last-Event-ID": last})
        assert r.status_code == 400, (last, r.text)
    for start, expected in (("0", ["run-created", "run-stopped"]), ("3", [])):
        with connect(ws_url(served, "bmm/raw", start=start)) as ws:
            assert json.loads(ws.recv(timeout=10))["sequence"] == 2
            assert [json.loads(ws.recv(timeout=10))["type"] for _ in expected] == expected
    with pytest.raises(BadRequestError, match="past the latest change"):
        Subscription(from_uri(served)._transport, ("bmm", "raw"), start=10).start()


@pytest.mark.parametrize(
    "path, code",
    [
        ("bmm/raw/nope", 4404),
        ("bmm", 4400),
        ("", 4400),
        ("bmm/raw/%00", 4404),
        ("bmm/raw/x%00y/primary", 4404),
        ("bmm/raw/%00/primary/data", 4404),
        ("bmm/raw/x/%00", 4404),
        ("bmm/raw/x/primary%0a", 4404),
        ("../../../etc/passwd", 4404),
        ("a" * 5000, 4404),
        ("bmm/raw/%2e%2e/%2e%2e", 4404),
    ],
)
def test_bad_paths_are_refused_and_the_server_goes_on(served, catalog, path, code):
    CatalogWriter(catalog, "bmm/raw")
    got, reason = closed_with(ws_url(served, path))
    assert got == code and reason, (got, reason)
    r = httpx.get(f"{served}/api/v1/stream/single/{path}")
    assert r.status_code == {4404: 404, 4400: 400}[code] and r.json()["detail"]
    with connect(ws_url(served, "bmm/raw")) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "schema"


def test_bad_envelopes_and_garbage_frames(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    for envelope in ("xml", "", "JSON", "x" * 300):
        code, reason = closed_with(ws_url(served, "bmm/raw", envelope_format=envelope))
        assert code == 4400 and "json or msgpack" in reason
    with connect(ws_url(served, "bmm/raw"), max_size=None) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send("{not json")
        ws.send(b"\x00" * 1_000_000)
        ws.send(packing.packb({"type": "rows-appended", "sequence": 99}))
        (uid,) = RE(bp.count([det1], num=2), writer)
        got = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
    assert [(m["type"], m["uid"]) for m in got] == [("run-created", uid), ("run-stopped", uid)]


# -- slow readers, readers that never read, crowds -------------------------------------------------


def _camera():
    return SynSignal(func=lambda: np.random.default_rng().random((256, 256)), name="cam")


def test_slow_reader_of_large_appends_is_cut_off_by_bytes(catalog, RE, monkeypatch):
    """Well under the message limit but over the byte limit: a reader of 0.5 MB frames that
    pauses while the run goes on is dropped with a reason whose start= resumes it exactly
    (its replay, as fast as the table gives it, is never dropped), while a reading
    subscriber gets everything."""
    import bluebroker.server.live_subscriber as live
    import bluebroker.server.routes.stream as route

    for module in (live, route):  # the paused reader is not cut off before it reads again
        monkeypatch.setattr(module, "DROP_GRACE", 120.0)
    writer = CatalogWriter(catalog, "bmm/raw")
    gate = threading.Event()
    with server_and_app(catalog, monkeypatch, live_queue_bytes=3_000_000) as (url, _):
        raw = from_uri(url)["bmm"]["raw"]
        RE.subscribe(writer)
        thread, out = in_thread(RE, _frames_after(gate, _camera(), 60))
        wait_until(lambda: len(raw) == 1 and "primary" in raw.values().last())
        uid = raw.values().last().uid
        path = f"bmm/raw/{uid}/primary/data/cam"
        fast = []
        sub = raw[uid]["primary"]["data"]["cam"].subscribe(fast.append)
        slow_seen = []
        small = _small_buffer_socket(url)
        with connect(
            ws_url(url, path, envelope_format="msgpack"), sock=small, max_size=None, max_queue=1
        ) as slow:
            packing.unpackb(slow.recv(timeout=10))
            gate.set()  # 30 MB of frames while the slow one reads nothing
            thread.join(timeout=60)
            wait_until(lambda: len(fast) >= 61)
            with pytest.raises(ConnectionClosed) as err:
                while True:
                    slow_seen.append(packing.unpackb(slow.recv(timeout=30))["sequence"])
        reason = err.value.rcvd
        assert reason is not None and reason.code == 4429 and "MB) behind" in reason.reason
        resume = int(reason.reason.rsplit("start=", 1)[1])
        rest = replay(url, path, envelope_format="msgpack")
        sub.close()
    assert out == [uid] and len(slow_seen) < 40
    assert [u.sequence for u in fast] == list(range(2, 63))
    resumed = [m["sequence"] for m in rest if m["sequence"] >= resume]
    assert slow_seen + resumed == list(range(2, 63))  # nothing lost, nothing twice


def _small_buffer_socket(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


def _never_reading_socket(url: str, request: bytes) -> socket.socket:
    """A client that sends its request and then reads nothing at all."""
    sock = _small_buffer_socket(url)
    sock.sendall(request)
    return sock


def test_clients_that_never_read_are_cut_off(catalog, RE, monkeypatch):
    """A websocket and an SSE client that send their request and read nothing: they are
    dropped and let go of, while the writer and a reading subscriber go on undisturbed."""
    import bluebroker.server.live_subscriber as live
    import bluebroker.server.routes.stream as route

    for module in (live, route):
        monkeypatch.setattr(module, "DROP_GRACE", 0.5)
    writer = CatalogWriter(catalog, "bmm/raw")
    gate = threading.Event()
    with server_and_app(catalog, monkeypatch, live_queue_bytes=2_000_000) as (url, app):
        raw = from_uri(url)["bmm"]["raw"]
        RE.subscribe(writer)
        thread, out = in_thread(RE, _frames_after(gate, _camera(), 40))
        wait_until(lambda: len(raw) == 1 and "primary" in raw.values().last())
        uid = raw.values().last().uid
        path = f"/api/v1/stream/single/bmm/raw/{uid}/primary/data/cam"
        fast = []
        sub = raw[uid]["primary"]["data"]["cam"].subscribe(fast.append)
        ws = _never_reading_socket(
            url,
            f"GET {path}?envelope_format=msgpack HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode(),
        )
        sse = _never_reading_socket(url, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: subscribers(app) == 3)
        started = time.monotonic()
        gate.set()
        thread.join(timeout=60)
        acquiring = time.monotonic() - started
        wait_until(lambda: len(fast) >= 41)
        wait_until(lambda: subscribers(app) == 1, timeout=30)  # both let go of
        sub.close()
        wait_until(lambda: subscribers(app) == 0 and not app.state.hub.topics)
        ws.close()
        sse.close()
    assert out == [uid] and acquiring < 30
    assert [u.sequence for u in fast] == list(range(2, 43))


def test_crowds_that_come_and_go_leave_nothing_behind(catalog, RE, monkeypatch):
    """Dozens of subscriptions that vanish at every stage (before the first message, right
    after it, mid-replay, without a close frame) while a run is written: the steady
    subscriber gets every change once, and the hub ends with no topic and no subscriber."""
    writer = CatalogWriter(catalog, "bmm/raw")
    with server_and_app(catalog, monkeypatch) as (url, app):
        raw = from_uri(url)["bmm"]["raw"]
        steady = []
        sub = raw.subscribe(steady.append)
        RE.subscribe(writer)
        thread, out = in_thread(RE, bp.count([det1], num=30, delay=0.01))
        wait_until(lambda: len(raw) == 1)
        uid = raw.values().last().uid
        stream = f"bmm/raw/{uid}/primary/data"

        def vanish(i: int) -> None:
            kind = i % 4
            if kind == 3:  # SSE, dropped after the schema
                with httpx.stream("GET", f"{url}/api/v1/stream/single/{stream}") as r:
                    next(r.iter_lines())
                return
            with contextlib.suppress(ConnectionClosed), connect(ws_url(url, stream, start=1)) as ws:
                if kind >= 1:
                    ws.recv(timeout=10)
                if kind == 2:
                    ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the connection ends

        crowd = [threading.Thread(target=vanish, args=(i,)) for i in range(40)]
        for t in crowd:
            t.start()
        for t in crowd:
            t.join(timeout=30)
        thread.join(timeout=60)
        wait_until(lambda: len(steady) >= 2)
        with connect(ws_url(url, stream, start=1)) as ws:  # and the server still serves
            schema = json.loads(ws.recv(timeout=10))
            replayed = [json.loads(ws.recv(timeout=10)) for _ in range(schema["sequence"])]
        sub.close()
        wait_until(lambda: subscribers(app) == 0 and not app.state.hub.topics)
    assert out == [uid]
    assert [(u.type, u.sequence) for u in steady] == [("run-created", 1), ("run-stopped", 2)]
    assert _row_ranges(replayed) == [(i, i + 1) for i in range(30)]


def test_a_malformed_notice_does_not_end_live_updates(catalog, catalog_uri, served, RE):
    """Whoever may NOTIFY on the catalog's channel cannot stop a server's listener: a payload
    that is not a change makes it read the change log, and later changes still arrive from
    a writer in another process (its own catalog object, so nothing is handed over in-process)."""
    from bluebroker.catalog import changes, open_catalog

    if not catalog_uri.startswith("postgresql"):
        pytest.skip("NOTIFY is PostgreSQL's; SQLite's feed reads the table")
    elsewhere = open_catalog(catalog_uri)
    writer = CatalogWriter(elsewhere, "bmm/raw")
    with connect(ws_url(served, "bmm/raw")) as ws:
        json.loads(ws.recv(timeout=10))
        with elsewhere.engine.begin() as conn:
            for junk in ("not json", '{"scope": 1}', "[]", '{"scope": "run", "node_id": "x"}'):
                conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (changes.channel(conn), junk))
        (uid,) = RE(bp.count([det1], num=1), writer)
        got = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
    elsewhere.close()
    assert [(m["type"], m["uid"]) for m in got] == [("run-created", uid), ("run-stopped", uid)]


def test_a_catalog_that_does_not_answer_is_a_close_to_retry(catalog, served, monkeypatch):
    """The database away while a topic is set up: close 1011 (the Python client reconnects)
    or 503, and the next subscriber of that node is served (nothing waits on the failed
    topic)."""
    from bluebroker.server.live import Hub

    CatalogWriter(catalog, "bmm/raw")
    real, fail = Hub._last_seq, [True]

    def flaky(self, view):
        if fail and fail.pop():
            raise OSError("the database went away")
        return real(self, view)

    monkeypatch.setattr(Hub, "_last_seq", flaky)
    code, reason = closed_with(ws_url(served, "bmm/raw"))
    assert code == 1011 and "connect again" in reason and "database" not in reason
    with connect(ws_url(served, "bmm/raw")) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "schema"
    fail.append(True)
    r = httpx.get(f"{served}/api/v1/stream/single/bmm/raw/", params={"start": 1})
    assert r.status_code == 503 and "connect again" in r.json()["detail"]
    seen = []
    with from_uri(served)["bmm"]["raw"].subscribe(seen.append) as sub:
        assert sub.schema["type"] == "schema"


def test_detector_frames_are_sized_before_they_are_read(catalog, served, RE, tmp_path, monkeypatch):
    """A file-backed column's append over the inline limit is sent as a link without reading
    its frames (a stream_datum may cover thousands of large frames)."""
    import bluebroker.server.live_messages as messages
    from bluebroker.catalog.external import ExternalArray

    def refuse(*args):
        raise AssertionError("frames read for a message that cannot carry them")

    monkeypatch.setattr(messages, "INLINE_BYTES", 40)  # under one 3x4 float32 frame
    monkeypatch.setattr(ExternalArray, "read_rows", refuse)
    scam = StreamHDF5Camera("scam", tmp_path, shape=(3, 4), dtype="float32")
    (uid,) = RE(bp.count([scam], num=2), CatalogWriter(catalog, "bmm/raw"))
    msgs = replay(served, f"bmm/raw/{uid}/primary/data/scam")
    assert [m["type"] for m in msgs] == ["rows-appended", "rows-appended", "run-stopped"]
    assert all("data" not in m and "slice=" in m["links"]["full"] for m in msgs[:2])


def test_rows_that_cannot_be_read_still_come_as_their_change(
    catalog, served, RE, tmp_path, monkeypatch
):
    """A detector file gone (the catalog's reason is given) or any other failure (no
    internals are): each change still comes once, as itself, without data, so a replay is
    never cut short and a live table can read the rows later."""
    from bluebroker.catalog.external import ExternalArray

    scam = StreamHDF5Camera("scam", tmp_path, shape=(3, 4), dtype="float32")
    (uid,) = RE(bp.count([scam], num=2), CatalogWriter(catalog, "bmm/raw"))
    path = f"bmm/raw/{uid}/primary/data/scam"
    scam.path.unlink()
    gone = replay(served, path)
    monkeypatch.setattr(ExternalArray, "read_rows", lambda *a: 1 / 0)
    broken = replay(served, path, envelope_format="msgpack")
    for msgs in (gone, broken):
        assert [(m["type"], m["sequence"]) for m in msgs] == [
            ("rows-appended", 1),
            ("rows-appended", 2),
            ("run-stopped", 3),
        ]
        assert all("data" not in m and m["error"] for m in msgs[:2])
    assert scam.path.name in gone[0]["error"]
    assert "division" not in broken[0]["error"] and "links" in broken[0]["error"]


def test_control_characters_below_a_real_run_are_refused(catalog, served, RE):
    """Websockets pass no HTTP middleware: a NUL under a run's path reached the catalog, and
    PostgreSQL refused it with an error (a 1011 and a traceback) instead of a 4404."""
    (uid,) = RE(bp.count([det1], num=1), CatalogWriter(catalog, "bmm/raw"))
    for path in (f"bmm/raw/{uid}/%00", f"bmm/raw/{uid}/primary/%00", f"bmm/raw/{uid}/x%1fy"):
        got, reason = closed_with(ws_url(served, path))
        assert got == 4404 and "control character" in reason, (path, got, reason)
