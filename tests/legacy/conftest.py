"""Legacy MongoDB data for the tests: real RunEngine runs written into the mongo_normalized
layout by suitcase-mongo's Serializer, on a real MongoDB-protocol server (mongo_server.py),
metadatastore and asset registry in two databases, with the quirks of old databases put in
by hand where suitcase-mongo would not write them."""

from __future__ import annotations

import copy
import datetime
import uuid

import numpy as np
import pytest

from .mongo_server import MongoServerError, mongo_server, with_database


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    """The URI (no database) of the session's MongoDB-protocol server."""
    from tests.conftest import CI

    try:
        with mongo_server(tmp_path_factory.mktemp("mongo")) as uri:
            yield uri
    except MongoServerError as err:
        if CI:
            pytest.fail(f"CI=true but no MongoDB-protocol server could be started: {err}")
        pytest.skip(str(err))


def create_indexes(mds, assets) -> None:
    """The indexes suitcase-mongo's Serializer.create_indexes makes that readers rely on
    (its full-text indexes are left out: the test server has none, and migration needs none)."""
    assets["resource"].create_index("uid")
    assets["datum"].create_index("datum_id", unique=True)
    assets["datum"].create_index("resource")
    mds["run_start"].create_index("uid", unique=True)
    mds["run_start"].create_index([("time", 1), ("_id", -1)], unique=True)
    mds["run_stop"].create_index("run_start", unique=True)
    mds["run_stop"].create_index("uid", unique=True)
    mds["event_descriptor"].create_index("uid", unique=True)
    mds["event_descriptor"].create_index([("run_start", -1), ("time", -1)])
    mds["event"].create_index("uid", unique=True)
    mds["event"].create_index([("descriptor", -1), ("time", 1)])


class LegacyDatabase:
    """A fresh metadatastore/asset registry database pair on the test server."""

    def __init__(self, server_uri: str) -> None:
        import pymongo

        tag = uuid.uuid4().hex[:10]
        self.mds_uri = with_database(server_uri, f"mds_{tag}")
        self.assets_uri = with_database(server_uri, f"assets_{tag}")
        self.client = pymongo.MongoClient(server_uri)
        self.mds = self.client[f"mds_{tag}"]
        self.assets = self.client[f"assets_{tag}"]
        create_indexes(self.mds, self.assets)

    def serializer(self):
        from suitcase.mongo_normalized import Serializer

        return Serializer(self.mds, self.assets)

    def drop(self) -> None:
        self.client.drop_database(self.mds.name)
        self.client.drop_database(self.assets.name)
        self.client.close()


@pytest.fixture
def legacy_db(mongo_uri):
    db = LegacyDatabase(mongo_uri)
    yield db
    db.drop()


def record_runs(RE, serializer, plans) -> list[list[tuple[str, dict]]]:
    """Run ``plans`` on ``RE`` into ``serializer``; each run's documents as emitted."""
    from tests.conftest import Recorder

    recorder = Recorder()
    tokens = [RE.subscribe(serializer), RE.subscribe(recorder)]
    runs = []
    try:
        for plan in plans:
            recorder.clear()
            RE(plan)
            runs.append(list(recorder))
    finally:
        for token in tokens:
            RE.unsubscribe(token)
    return runs


@pytest.fixture
def legacy_runs(RE, legacy_db, tmp_path):
    """Four real runs in the legacy database, each with what it emitted (documents), plus the
    HDF5 frames: a scan with a baseline, an HDF5 area detector (resource/datum in the asset
    database), an inline waveform, and a count whose quirks old databases have: no stop
    document, a descriptor without a name, a datetime in its start document, and resources
    that name no run_start (found through their datums, and given their run again). The
    documents are adjusted to what the database then holds."""
    from bluesky import plans as bp
    from bluesky import preprocessors as bpp
    from ophyd.sim import SynSignal, det1, det2, motor, motor1, motor2

    from bluebroker.ingest.simulated import HDF5Camera

    cam = HDF5Camera("cam", tmp_path, shape=(6, 5))
    wave = SynSignal(func=lambda: np.linspace(0, 1, 7), name="wave")
    plans = [
        bpp.baseline_wrapper(
            bp.scan([det1, det2], motor, -1, 1, 11, md={"sample": "Cu"}), [motor1, motor2]
        ),
        bp.count([cam, det1], num=4, md={"sample": "Fe"}),
        bp.count([wave], num=2, md={"sample": "Si"}),
        bp.count([cam], num=3, md={"sample": "old"}),
    ]
    runs = record_runs(RE, legacy_db.serializer(), plans)
    _make_old(legacy_db, runs[3])
    return {"runs": runs, "frames": np.stack(cam.frames), "db": legacy_db}


WHEN = datetime.datetime(2017, 3, 4, 5, 6, 7, 890000)


def _make_old(db: LegacyDatabase, docs: list[tuple[str, dict]]) -> None:
    """Give one run the quirks of an old database, in Mongo and in its expected documents."""
    start = next(d for n, d in docs if n == "start")
    uid = start["uid"]
    db.mds["run_stop"].delete_one({"run_start": uid})
    db.mds["event_descriptor"].update_many({"run_start": uid}, {"$unset": {"name": ""}})
    db.mds["run_start"].update_one({"uid": uid}, {"$set": {"acquired": WHEN}})
    db.assets["resource"].update_many({"run_start": uid}, {"$unset": {"run_start": ""}})
    expected = []
    for name, doc in docs:
        if name == "stop":
            continue
        doc = copy.deepcopy(doc)
        if name == "start":
            doc["acquired"] = WHEN.isoformat()
        expected.append((name, doc))
    docs[:] = expected
