"""Documents through a real Kafka-protocol broker: a RunEngine publishing, workers ingesting,
bad messages dead-lettered, workers killed with SIGKILL and nothing lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import msgpack
import msgpack_numpy
import numpy as np
import pytest
from bluesky import plans as bp
from event_model import compose_run
from ophyd.sim import det1, det2, motor

from bluebroker.catalog import open_catalog
from bluebroker.ingest import wire
from bluebroker.ingest.consumer import KafkaIngestWorker
from bluebroker.ingest.kafka import Publisher
from tests.compare import assert_run_matches
from tests.conftest import FAST_CONSUMER
from tests.devices import HDF5Camera
from tests.ingest.kafka_workers import committed, compose, rows, start_worker, wait


def _worker(catalog, broker, topic, **kw):
    return KafkaIngestWorker(
        catalog,
        broker,
        topic,
        group_id=f"g{uuid.uuid4().hex[:6]}",
        consumer_config=FAST_CONSUMER,
        **kw,
    )


def test_runengine_to_catalog_through_kafka(
    kafka_broker, new_topic, catalog, RE, recorder, tmp_path
):
    topic = new_topic()
    publisher = Publisher(topic, kafka_broker)
    RE.subscribe(publisher)
    RE.subscribe(recorder)
    cam = HDF5Camera("cam", tmp_path)
    uids = [RE(bp.scan([det1, det2], motor, -1, 1, 15))[0], RE(bp.count([cam, det1], num=3))[0]]
    counters = _worker(catalog, kafka_broker, topic).run(max_idle=4)
    assert counters.dead_lettered == 0 and counters.written == len(recorder)
    runs = catalog[wire.catalog_path(topic)]
    for uid in uids:
        docs = [(n, d) for n, d in recorder if _run_of(n, d, recorder) == uid]
        assert_run_matches(runs[uid], docs)
    np.testing.assert_array_equal(runs[uids[1]]["primary"]["data"]["cam"][:], np.stack(cam.frames))


def _run_of(name, doc, docs):
    if name == "start":
        return doc["uid"]
    if "run_start" in doc:
        return doc["run_start"]
    parents = {d["uid"]: d["run_start"] for n, d in docs if n in ("descriptor", "resource")}
    return parents.get(doc.get("descriptor") or doc.get("resource"))


def test_bad_messages_are_dead_lettered(kafka_broker, new_topic, catalog, RE, recorder):
    from kafka import KafkaConsumer, KafkaProducer

    topic, dead = new_topic(), f"dead{uuid.uuid4().hex[:6]}"
    RE.subscribe(recorder)
    RE(bp.count([det1], num=3))
    orphan = compose_run().compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
    )
    bad = [
        b"\x00\x01 not msgpack",
        msgpack.packb({"a": 1}),
        wire.encode("event", {"uid": "no-data"}),
        wire.encode("event", orphan.compose_event(data={"x": 1.0}, timestamps={"x": 1.0})),
        # msgpack-numpy pickles object arrays; unpickling them would run the sender's code
        msgpack.packb(
            ["event", {"data": np.array([{"a": 1}, None], dtype=object)}],
            default=msgpack_numpy.encode,
        ),
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_broker)
    for i, (name, doc) in enumerate(recorder):
        producer.send(topic, wire.encode(name, doc))
        if i < len(bad):
            producer.send(topic, bad[i])
    producer.flush()
    counters = _worker(catalog, kafka_broker, topic, dead_letter_topic=dead).run(max_idle=4)
    assert counters.dead_lettered == 5
    assert_run_matches(catalog[wire.catalog_path(topic)][-1], list(recorder))
    reader = KafkaConsumer(
        dead, bootstrap_servers=kafka_broker, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    headers = sorted(
        (dict(m.headers) for m in reader),  # in the order they were consumed
        key=lambda h: int(h["bluebroker-offset"]),
    )
    reader.close()
    reasons = [h["bluebroker-error"].decode() for h in headers]
    assert {h["bluebroker-topic"].decode() for h in headers} == {topic}
    assert len(reasons) == 5
    for words, reason in zip(
        ["not msgpack", "not a [name, doc] pair", "schema", "never received", "pickled"],
        reasons,
        strict=True,
    ):
        assert words in reason, reasons


def _produce_run(broker, topic, events):
    """A long run, composed with event-model and published in order; returns its documents."""
    docs = compose(events)
    publisher = Publisher(topic, broker)
    for name, doc in docs:
        publisher(name, doc)
    publisher.flush()
    return docs


def test_sigkill_at_several_points_loses_and_duplicates_nothing(
    kafka_broker, new_topic, catalog, catalog_uri, tmp_path
):
    topic, group = new_topic(), f"g{uuid.uuid4().hex[:6]}"
    docs = _produce_run(kafka_broker, topic, 3000)
    uid = docs[0][1]["uid"]
    for threshold in (300, 1200, 2400):  # kill -9 after the catalog holds this many rows
        worker = start_worker(kafka_broker, topic, catalog_uri, group, tmp_path).proc
        wait(
            lambda t=threshold, w=worker: rows(catalog_uri, topic, uid) >= t or w.poll() is not None
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    worker = start_worker(kafka_broker, topic, catalog_uri, group, tmp_path)
    try:
        # the rows may all be there already (the last killed worker ran ahead): wait for the
        # worker's readiness, then for it to have committed everything, before SIGTERM
        worker.ready()
        wait(lambda: rows(catalog_uri, topic, uid) >= 3000)
        wait(lambda: committed(kafka_broker, topic, group) == {0: len(docs)}, what="commits")
    finally:
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=30) == 0, worker.text()[-3000:]  # drains, exits 0
    assert_run_matches(open_catalog(catalog_uri)[wire.catalog_path(topic)][uid], docs)


def test_two_workers_share_partitions_and_survive_a_kill(
    kafka_broker, new_topic, catalog, catalog_uri, tmp_path
):
    topic, group = new_topic(partitions=4), f"g{uuid.uuid4().hex[:6]}"
    workers = [
        start_worker(kafka_broker, topic, catalog_uri, group, tmp_path, batch=20) for _ in range(2)
    ]
    for worker in workers:
        worker.ready()
    runs = [_produce_run(kafka_broker, topic, 400) for _ in range(6)]
    first = runs[0][0][1]["uid"]
    wait(lambda: rows(catalog_uri, topic, first) > 0)
    os.kill(workers[0].proc.pid, signal.SIGKILL)
    workers[0].proc.wait()
    try:
        for docs in runs:
            uid = docs[0][1]["uid"]
            wait(lambda u=uid: rows(catalog_uri, topic, u) >= 400, timeout=90)
    finally:
        workers[1].proc.send_signal(signal.SIGTERM)
        assert workers[1].proc.wait(timeout=30) == 0, workers[1].text()[-3000:]
    cat = open_catalog(catalog_uri)
    for docs in runs:
        assert_run_matches(cat[wire.catalog_path(topic)][docs[0][1]["uid"]], docs)


def test_publisher_keys_by_run_and_splits_large_pages(kafka_broker, new_topic, RE):
    from event_model import pack_event_page
    from kafka import KafkaConsumer

    topic = new_topic()
    publisher = Publisher(topic, kafka_broker, max_request_size=200_000)
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"w": {"source": "s", "dtype": "array", "shape": [5000]}}
    )
    events = [
        desc.compose_event(data={"w": np.full(5000, float(i))}, timestamps={"w": 1.0})
        for i in range(10)
    ]
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("event_page", pack_event_page(*events)),
        ("stop", bundle.compose_stop()),
    ]:
        publisher(name, doc)
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    got = [(m.key, wire.decode(m.value)) for m in reader]
    reader.close()
    assert {k for k, _ in got} == {bundle.start_doc["uid"].encode()}
    pages = [doc for _, (name, doc) in got if name == "event_page"]
    assert len(pages) > 1 and sum(len(p["uid"]) for p in pages) == 10
    assert [name for _, (name, _) in got if name != "event_page"] == ["start", "descriptor", "stop"]


def test_bluesky_kafka_publisher_feeds_our_worker(kafka_broker, new_topic, catalog, RE, recorder):
    bluesky_kafka = pytest.importorskip("bluesky_kafka")
    theirs = new_topic()
    RE.subscribe(recorder)
    RE.subscribe(bluesky_kafka.Publisher(theirs, kafka_broker, key="bmm", flush_on_stop_doc=True))
    (uid,) = RE(bp.count([det1, det2], num=4))
    _worker(catalog, kafka_broker, theirs).run(max_idle=4)
    assert_run_matches(catalog[wire.catalog_path(theirs)][uid], list(recorder))


def test_our_publisher_feeds_bluesky_kafka_consumers(kafka_broker, new_topic, RE, recorder):
    bluesky_kafka = pytest.importorskip("bluesky_kafka")
    ours = new_topic()
    RE.subscribe(recorder)
    RE.subscribe(Publisher(ours, kafka_broker))
    (uid,) = RE(bp.count([det1, det2], num=4))
    received = []
    deadline = time.monotonic() + 60

    def collect(consumer, topic, name, doc):
        received.append((name, doc))

    consumer = bluesky_kafka.BlueskyConsumer(
        [ours],
        kafka_broker,
        f"g{uuid.uuid4().hex[:6]}",
        consumer_config={
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 6000,
        },
        process_document=collect,
    )
    consumer.start(
        continue_polling=lambda: (
            time.monotonic() < deadline and not (received and received[-1][0] == "stop")
        )
    )
    assert [n for n, _ in received] == [n for n, _ in recorder]
    assert received[0][1]["uid"] == uid


def test_serve_with_kafka_in_one_process(kafka_broker, new_topic, RE, recorder, tmp_path):
    """`bluebroker serve --kafka`: published documents become readable over HTTP."""
    from bluebroker.client import from_uri
    from tests.ingest.kafka_workers import serve_kafka_args
    from tests.processes import free_port

    topic = new_topic()
    port = free_port()
    args = serve_kafka_args(f"sqlite:///{tmp_path}/c.db", port, kafka_broker, topic)
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        RE.subscribe(Publisher(topic, kafka_broker))
        RE.subscribe(recorder)
        (uid,) = RE(bp.count([det1], num=5))

        def arrived():
            try:
                runs = from_uri(f"http://127.0.0.1:{port}")[wire.catalog_path(topic)]
                return uid in runs and runs[uid].stop is not None
            except (ConnectionError, KeyError):
                return False

        wait(arrived, timeout=60)
        run = from_uri(f"http://127.0.0.1:{port}")[wire.catalog_path(topic)][uid]
        expected = [d["data"]["det1"] for n, d in recorder if n == "event"]
        np.testing.assert_array_equal(run["primary"]["data"]["det1"][:], expected)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0


def test_catalog_outage_pauses_and_resumes_without_loss(kafka_broker, new_topic, postgresql_uri):
    """PostgreSQL goes away mid-stream (every connection dropped, new ones refused) and comes
    back: the worker waits with its partitions paused, then writes everything, once."""
    import threading
    from urllib.parse import urlsplit

    from tests.proxy import TcpProxy

    open_catalog(postgresql_uri, create=True).close()
    parts = urlsplit(postgresql_uri)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    via_proxy = postgresql_uri.replace(parts.netloc, f"{parts.username}@127.0.0.1:{proxy.port}")
    topic = new_topic()
    worker = _worker(open_catalog(via_proxy), kafka_broker, topic)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    first = _produce_run(kafka_broker, topic, 200)
    wait(lambda: rows(postgresql_uri, topic, first[0][1]["uid"]) >= 200)
    proxy.cut()
    second = _produce_run(kafka_broker, topic, 300)
    wait(lambda: worker.counters.waits >= 2, what="the worker to wait for the catalog")
    assert worker.waiting is not None and "catalog unreachable" in worker.waiting
    assert rows(postgresql_uri, topic, second[0][1]["uid"]) == 0  # nothing while away
    proxy.restore()
    wait(lambda: rows(postgresql_uri, topic, second[0][1]["uid"]) >= 300, timeout=90)
    worker.stop()
    thread.join(timeout=30)
    assert worker.counters.dead_lettered == 0
    cat = open_catalog(postgresql_uri)
    for docs in (first, second):
        assert_run_matches(cat[wire.catalog_path(topic)][docs[0][1]["uid"]], docs)
    proxy.cut()
