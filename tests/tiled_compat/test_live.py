"""Tiled's client subscribing to live updates (``.subscribe()`` of containers and arrays)
while a real RunEngine writes into the served catalog: new runs, new streams, new keys and
appended rows arrive in Tiled's message shapes, each once and in order, and a run's
subscriptions end when it stops. Our own client's protocol is tests/server/test_live.py."""

from __future__ import annotations

import json
import threading
import time
import uuid

import numpy as np
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from bluesky_tiled_plugins.clients.bluesky_event_stream import BlueskyEventStreamV2Mongo
from bluesky_tiled_plugins.clients.bluesky_run import BlueskyRunV2Mongo
from ophyd.sim import SynSignal, det1, det2, motor
from tiled.client import from_uri
from websockets.exceptions import InvalidStatus

from bluebroker.ingest import CatalogWriter
from bluebroker.server.run import background_server


class Collected:
    """Tiled's callbacks (held strongly: its registry keeps only weak references) and the
    ends of the subscriptions they belong to."""

    def __init__(self) -> None:
        self.updates: list = []
        self.closed = threading.Event()

    def add(self, update) -> None:
        self.updates.append(update)

    def ended(self, _subscription) -> None:
        self.closed.set()

    def follow(self, subscription, registry: str = "new_data"):
        getattr(subscription, registry).add_callback(self.add)
        subscription.stream_closed.add_callback(self.ended)
        return subscription


def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def in_thread(RE, plan) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.extend(RE(plan)), daemon=True)
    thread.start()
    return thread, out


def gated(gate: threading.Event, detectors: list, n: int, more_stream: list | None = None):
    """One event, then ``n`` more once ``gate`` opens (and, when given, one event of a new
    stream ``extra``): a run that goes on while the test subscribes."""
    yield from bpp.stage_wrapper(_gated(gate, detectors, n, more_stream), detectors)


def _gated(gate, detectors, n, more_stream):
    yield from bps.open_run()
    yield from bps.trigger_and_read(detectors)
    while not gate.is_set():
        yield from bps.sleep(0.02)
    for _ in range(n):
        yield from bps.trigger_and_read(detectors)
    if more_stream:
        yield from bps.trigger_and_read(more_stream, name="extra")
    yield from bps.close_run()


@pytest.fixture
def served(catalog):
    with background_server(catalog) as url:
        yield url


def test_catalog_subscription_sees_each_new_run_and_its_stop(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (before,) = RE(bp.count([det1], num=1), writer)
    raw = from_uri(served)["bmm"]["raw"]
    runs, updated = Collected(), Collected()
    sub = raw.subscribe()
    runs.follow(sub, "child_created")
    updated.follow(sub, "child_metadata_updated")
    sub.start_in_thread()  # from now on: the run written before is not told
    try:
        uids = [RE(bp.scan([det1, det2], motor, -1, 1, 3 + i), writer)[0] for i in range(2)]
        wait_until(lambda: len(updated.updates) == 2)
    finally:
        sub.disconnect()
    assert [u.key for u in runs.updates] == uids and before not in uids
    assert [u.key for u in updated.updates] == uids
    sequences = sorted(u.sequence for u in runs.updates + updated.updates)
    assert sequences == list(range(sequences[0], sequences[0] + 4))  # each once, in order
    assert [u.sequence for u in runs.updates] == sequences[0::2]
    child = runs.updates[1].child()  # the new run as Tiled's client opens it
    assert isinstance(child, BlueskyRunV2Mongo)
    assert child.metadata["start"]["uid"] == uids[1]
    np.testing.assert_array_equal(
        child["primary"]["data"]["motor"].read(), raw[uids[1]]["primary"]["data"]["motor"].read()
    )
    assert runs.updates[0].specs[0].name == "BlueskyRun"
    assert updated.updates[0].metadata["stop"]["exit_status"] == "success"
    assert updated.updates[0].metadata["start"]["uid"] == uids[0]


def test_run_and_column_subscriptions_follow_a_run_until_it_stops(catalog, served, RE):
    """While a run is acquired: its subscription sees a stream appear, a column's sees its
    rows (raw bytes in array-data messages) each once and in order, and both end (Tiled's
    stream_closed) when the run stops."""
    RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    raw = from_uri(served)["bmm"]["raw"]
    gate = threading.Event()
    wave = SynSignal(func=lambda: np.random.default_rng().random(7), name="wave")
    thread, out = in_thread(RE, gated(gate, [det1, wave], 20, more_stream=[det2]))
    try:
        wait_until(lambda: len(raw) == 1 and "primary" in raw.values().last())
        run = raw.values().last()
        streams, det, waves = Collected(), Collected(), Collected()
        subs = [
            streams.follow(run.subscribe(), "child_created").start_in_thread(1),
            det.follow(run["primary"]["data"]["det1"].subscribe()).start_in_thread(1),
            waves.follow(run["primary"]["data"]["wave"].subscribe()).start_in_thread(),
        ]
        gate.set()
        thread.join(timeout=60)
        for sub in (streams, det, waves):
            assert sub.closed.wait(30), "the run's stop ends every subscription"
    finally:
        gate.set()
        for sub in subs:
            sub.disconnect()
    assert len(out) == 1
    final = raw[out[0]]
    assert [(u.key, type(u.child())) for u in streams.updates] == [
        ("primary", BlueskyEventStreamV2Mongo),
        ("extra", BlueskyEventStreamV2Mongo),
    ]
    assert list(streams.updates[1].child()["data"]) == ["time", "det2"]
    # det1 from its first row (start=1): 21 rows, one message each, in order
    assert [u.sequence for u in det.updates] == sorted({u.sequence for u in det.updates})
    assert [u.offset for u in det.updates] == [(i,) for i in range(21)]
    values = np.concatenate([u.data() for u in det.updates])
    np.testing.assert_array_equal(values, final["primary"]["data"]["det1"].read())
    # the waveform from when it subscribed: rows 2..21, shape (rows, 7), contiguous
    offsets = [u.offset[0] for u in waves.updates]
    assert offsets == list(range(offsets[0], 21)) and offsets[0] <= 1
    frames = np.concatenate([u.data() for u in waves.updates])
    np.testing.assert_array_equal(frames, final["primary"]["data"]["wave"].read()[offsets[0] :])


def test_detector_frames_from_files_and_large_appends_by_reference(catalog, served, RE, tmp_path):
    """Frames read from an area detector's HDF5 files come as array-data; appends too large
    for Tiled's 1 MB message limit come as array-ref, which its client fetches."""
    from bluebroker.ingest.simulated import HDF5Camera

    RE.subscribe(CatalogWriter(catalog, "bmm/raw"))
    raw = from_uri(served)["bmm"]["raw"]
    cam = HDF5Camera("cam", tmp_path, shape=(6, 5))
    big = SynSignal(func=lambda: np.random.default_rng().random((300, 300)), name="big")
    gate = threading.Event()
    thread, out = in_thread(RE, gated(gate, [cam, big], 3))
    try:
        wait_until(lambda: len(raw) == 1 and "primary" in raw.values().last())
        data = raw.values().last()["primary"]["data"]
        frames, bigs = Collected(), Collected()
        subs = [
            frames.follow(data["cam"].subscribe()).start_in_thread(1),
            bigs.follow(data["big"].subscribe()).start_in_thread(1),
        ]
        gate.set()
        thread.join(timeout=60)
        assert frames.closed.wait(30) and bigs.closed.wait(30)
    finally:
        gate.set()
        for sub in subs:
            sub.disconnect()
    final = raw[out[0]]["primary"]["data"]
    assert {type(u).__name__ for u in frames.updates} == {"LiveArrayData"}
    np.testing.assert_array_equal(
        np.concatenate([u.data() for u in frames.updates]), final["cam"].read()
    )
    # with TiledWriter's axis of frames within an event (one frame per point here)
    np.testing.assert_array_equal(np.stack(cam.frames)[:, np.newaxis], final["cam"].read())
    assert {type(u).__name__ for u in bigs.updates} == {"LiveArrayRef"}
    assert [u.patch.offset[0] for u in bigs.updates] == [0, 1, 2, 3]
    np.testing.assert_array_equal(
        np.concatenate([u.data() for u in bigs.updates]), final["big"].read()
    )


def test_new_keys_of_a_stream_appear_in_its_data(catalog, served):
    """A further descriptor of a stream that brings a new key (documents written by other
    means than a RunEngine, which refuses it) is a new child of the stream's data."""
    from event_model import compose_run

    writer = CatalogWriter(catalog, "bmm/raw")
    bundle = compose_run()
    writer("start", bundle.start_doc)
    keys = {"x": {"dtype": "number", "shape": [], "source": "x"}}
    first = bundle.compose_descriptor(name="primary", data_keys=keys)
    writer("descriptor", first.descriptor_doc)
    writer("event", first.compose_event(data={"x": 1.0}, timestamps={"x": 0.0}))
    uid = bundle.start_doc["uid"]
    data = from_uri(served)["bmm"]["raw"][uid]["primary"]["data"]
    keys_seen = Collected()
    sub = keys_seen.follow(data.subscribe(), "child_created").start_in_thread()
    try:
        more = {**keys, "y": {"dtype": "number", "shape": [], "source": "y"}}
        second = {**first.descriptor_doc, "uid": str(uuid.uuid4()), "data_keys": more}
        second["time"] += 1  # event-model's composer refuses this; the writer takes it
        writer("descriptor", second)
        event = {"uid": str(uuid.uuid4()), "descriptor": second["uid"], "seq_num": 2}
        values = {"x": 2.0, "y": 3.0}
        event.update(time=second["time"], data=values, timestamps=dict.fromkeys(values, 0.0))
        writer("event", {**event, "filled": {}})
        writer("stop", bundle.compose_stop())
        assert keys_seen.closed.wait(30)
    finally:
        sub.disconnect()
    assert [u.key for u in keys_seen.updates] == ["y"]
    column = keys_seen.updates[0].child()  # its structure as when it was announced
    assert column.structure().shape[0] in (1, 2) and column.item["id"] == "y"
    assert column.refresh().read().tolist()[-1] == 3.0  # grown since: read as it is now


def test_replay_from_a_sequence_has_no_gap_and_no_duplicate(catalog, served, RE):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=6), writer)
    column = from_uri(served)["bmm"]["raw"][uid]["primary"]["data"]["det1"]
    for start, first_row in ((0, 0), (1, 0), (4, 3)):
        got = Collected()
        got.follow(column.subscribe()).start(start)  # returns when the replay reaches the stop
        assert got.closed.is_set()
        assert [u.sequence for u in got.updates] == list(range(start or 1, 7))
        assert [u.offset[0] for u in got.updates] == list(range(first_row, 6))
    done = Collected()
    done.follow(column.subscribe()).start()  # a stopped run, nothing asked to replay: ends
    assert done.closed.is_set() and done.updates == []


def test_refusals_raise_in_tiled_client_instead_of_reconnecting(catalog, RE, tmp_path):
    writer = CatalogWriter(catalog, "bmm/raw")
    (uid,) = RE(bp.count([det1], num=1), writer)
    with background_server(catalog, api_key="secret_for_tiled_0123") as url:
        c = from_uri(url, api_key="secret_for_tiled_0123")
        run = c["bmm"]["raw"][uid]
        with pytest.raises(InvalidStatus) as err:
            run["primary"]["config"]["det1"].subscribe().start()  # a table without updates
        assert err.value.response.status_code == 400
        assert b"has no live updates" in err.value.response.body
        got = Collected()
        got.follow(run.subscribe(), "child_created").start(1)
        assert [u.key for u in got.updates] == ["primary"]
        c.context.api_key = "not_the_key"
        with pytest.raises(InvalidStatus) as err:
            run.subscribe().start()
        assert err.value.response.status_code == 401


@pytest.mark.parametrize(
    ("path", "query", "status", "says"),
    [
        ("bmm//raw//nope", "", 404, "not found"),
        ("//", "", 400, "has no live updates"),
        ("bmm//raw", "&start=abc", 400, "whole number"),
        ("bmm//raw", "&start=-1", 400, "whole number"),
        ("bmm//raw", "&start=99999", 400, "past the latest change"),
        ("bmm//raw//" + "x" * 5000, "", 400, "at most 1000"),
        ("bmm//raw//%00//..", "", 404, "control character"),
    ],
)
def test_bad_subscriptions_of_tiled_paths_are_refused_with_a_reason(
    catalog, served, RE, path, query, status, says
):
    from websockets.sync.client import connect

    RE(bp.count([det1], num=1), CatalogWriter(catalog, "bmm/raw"))
    url = served.replace("http://", "ws://") + f"/api/v1/stream/single/{path}"
    with pytest.raises(InvalidStatus) as err:
        connect(f"{url}?envelope_format=msgpack{query}", open_timeout=30)
    assert err.value.response.status_code == status
    assert says in json.loads(err.value.response.body)["detail"]


def test_tiled_subscribers_hear_only_of_runs_they_may_read(catalog, RE, monkeypatch):
    """Under an access policy, Tiled's catalog subscription replays and follows only the
    caller's runs; another's run is not even mentioned."""
    import msgpack
    from websockets.sync.client import connect

    from bluebroker.server.api_keys import ApiKeyStore
    from bluebroker.server.auth import AuthSettings
    from bluebroker.server.policy import AccessPolicy

    monkeypatch.delenv("BLUEBROKER_API_KEY", raising=False)
    writer = CatalogWriter(catalog, "bmm/raw")
    RE.subscribe(writer)
    theirs = RE(bp.count([det1]), data_session="pass-2")
    mine = RE(bp.count([det1]), data_session="pass-1")
    store = ApiKeyStore(catalog.engine)
    key, _ = store.create("user:test:alice", {"read:metadata", "read:data"}, groups={"pass-1"})
    grants = {"grants": [{"to": {"signed_in": True}, "runs": {"data_session": "{groups}"}}]}
    auth = AuthSettings(token="owner", keys=store, policy=AccessPolicy.from_dict(grants))
    with background_server(catalog, auth=auth) as url:
        ws = url.replace("http://", "ws://") + "/api/v1/stream/single/bmm//raw"
        with connect(f"{ws}?envelope_format=msgpack&start=1&api_key={key}") as conn:
            assert msgpack.unpackb(conn.recv(timeout=30))["type"] == "container-schema"
            heard = [msgpack.unpackb(conn.recv(timeout=30)) for _ in range(2)]
            mine += RE(bp.count([det1]), data_session="pass-1")
            RE(bp.count([det1]), data_session="pass-2")
            mine += RE(bp.count([det1]), data_session="pass-1")
            heard += [msgpack.unpackb(conn.recv(timeout=30)) for _ in range(4)]
    assert [m["key"] for m in heard] == [u for u in mine for _ in range(2)]
    assert [m["type"] for m in heard[:2]] == [
        "container-child-created",
        "container-child-metadata-updated",
    ]
    assert theirs[0] not in json.dumps([m["key"] for m in heard])
