"""The Kafka worker under trouble, on a real broker (Tansu) and a real PostgreSQL behind a TCP
proxy that stages outages: signals and kills while the catalog is away, a rebalance while it
is away, documents too large for a default producer, hostile topic names, a worker that cannot
start. Every time: 0 lost, 0 duplicated, every refused message dead-lettered with its reason,
and no offset committed past a message whose effect is not committed."""

from __future__ import annotations

import signal
import threading
import uuid
from urllib.parse import urlsplit

import numpy as np
import pytest
from event_model import compose_run

from bluebroker.catalog import open_catalog
from bluebroker.ingest import wire
from bluebroker.ingest.consumer import KafkaIngestWorker
from bluebroker.ingest.kafka import Publisher
from tests.compare import assert_run_matches
from tests.conftest import FAST_CONSUMER
from tests.ingest.kafka_workers import (
    committed,
    compose,
    dead_letters,
    produce,
    rows,
    serve_kafka_args,
    start_worker,
    wait,
)
from tests.processes import free_port
from tests.proxy import TcpProxy


@pytest.fixture
def proxied(postgresql_uri):
    """``(direct URI, URI through a TcpProxy, the proxy)`` for a fresh PostgreSQL schema."""
    open_catalog(postgresql_uri, create=True).close()
    parts = urlsplit(postgresql_uri)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    via = postgresql_uri.replace(parts.netloc, f"{parts.username}@127.0.0.1:{proxy.port}")
    yield postgresql_uri, via, proxy
    proxy.cut()


def _worker(catalog, broker, topic, group=None, **kw):
    return KafkaIngestWorker(
        catalog,
        broker,
        topic,
        group_id=group or f"g{uuid.uuid4().hex[:6]}",
        consumer_config=FAST_CONSUMER,
        **kw,
    )


def _in_thread(worker):
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def _check_runs(uri, topic, runs):
    cat = open_catalog(uri)
    try:
        for docs in runs:
            assert_run_matches(cat[wire.catalog_path(topic)][docs[0][1]["uid"]], docs)
    finally:
        cat.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_signal_during_outage_commits_nothing_unwritten(
    kafka_broker, new_topic, proxied, tmp_path, sig
):
    """A worker stopped (or killed) while it waits for PostgreSQL commits nothing past what
    is written; the next worker writes the rest once: no loss, no duplicate."""
    direct, via, proxy = proxied
    topic, group = new_topic(), f"g{uuid.uuid4().hex[:6]}"
    worker = start_worker(kafka_broker, topic, via, group, tmp_path).ready()
    first = produce(kafka_broker, topic, compose(100))
    wait(lambda: rows(direct, topic, first[0][1]["uid"]) == 100)
    wait(lambda: committed(kafka_broker, topic, group)[0] == len(first), what="first commit")
    proxy.cut()
    second = produce(kafka_broker, topic, compose(200))
    worker.wait_for("catalog unreachable")
    worker.proc.send_signal(sig)
    code = worker.proc.wait(timeout=30)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), worker.text()[-3000:]
    # the old worker committed its position here, past the batch it never wrote
    assert committed(kafka_broker, topic, group)[0] == len(first)
    assert rows(direct, topic, second[0][1]["uid"]) == 0
    proxy.restore()
    worker = start_worker(kafka_broker, topic, via, group, tmp_path).ready()
    try:
        wait(lambda: rows(direct, topic, second[0][1]["uid"]) == 200, timeout=90)
        total = len(first) + len(second)
        wait(lambda: committed(kafka_broker, topic, group)[0] == total, what="last commit")
    finally:
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=30) == 0, worker.text()[-3000:]
    _check_runs(direct, topic, [first, second])


def test_rebalance_during_outage_skips_nothing(kafka_broker, new_topic, proxied):
    """A worker waits out an outage; a second one joins (and waits too), then leaves, so
    the first is handed partitions while the catalog is still away. Those stay paused
    (kafka-python starts new ones unpaused), so no record is fetched and dropped; once the
    catalog is back everything is written once and committed."""
    direct, via, proxy = proxied
    topic, group = new_topic(partitions=4), f"g{uuid.uuid4().hex[:6]}"
    second_catalog = open_catalog(via)  # opened now: it reads the schema version
    # small batches: the batch in hand while waiting does not hold the partitions handed over
    staying = _worker(open_catalog(via), kafka_broker, topic, group, batch_size=10)
    threads = [_in_thread(staying)]
    wait(lambda: len(staying.assigned) == 4, what="the first worker's partitions")
    before = [produce(kafka_broker, topic, compose(20), partition=p) for p in range(4)]
    for docs in before:
        wait(lambda d=docs: rows(direct, topic, d[0][1]["uid"]) == 20)
    proxy.cut()
    during = [produce(kafka_broker, topic, compose(100), partition=p) for p in range(4)]
    wait(lambda: staying.waiting, what="the first worker to wait")
    leaving = _worker(second_catalog, kafka_broker, topic, group, batch_size=10)
    threads.append(_in_thread(leaving))
    wait(lambda: leaving.assigned and leaving.waiting, timeout=90, what="the second to wait")
    leaving.stop()  # abandons its batch, uncommitted, and leaves the group
    threads[1].join(timeout=30)
    wait(lambda: len(staying.assigned) == 4, timeout=90, what="the partitions to come back")
    waits = staying.counters.waits
    # polls with the new partitions assigned: the old worker fetched (and lost) records here
    wait(lambda: staying.counters.waits >= waits + 2, what="polls during the outage")
    assert staying.waiting
    proxy.restore()
    for docs in during:
        wait(lambda d=docs: rows(direct, topic, d[0][1]["uid"]) == 100, timeout=90)
    ends = {p: len(before[p]) + len(during[p]) for p in range(4)}
    wait(lambda: committed(kafka_broker, topic, group) == ends, what="the commits")
    staying.stop()
    threads[0].join(timeout=30)
    assert staying.counters.dead_lettered == 0 and leaving.counters.dead_lettered == 0
    _check_runs(direct, topic, before + during)


def test_oversized_refused_document_is_dead_lettered_whole(kafka_broker, new_topic, catalog):
    """A 5 MiB document (the Publisher sends up to 8 MiB) that the writer refuses reaches the
    dead-letter topic whole; a worker whose dead-letter topic takes less sends it without its
    value, saying where the original is. Neither stops the worker or holds up the run."""
    topic = new_topic()
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
    )
    orphan = compose_run().compose_descriptor(
        name="primary", data_keys={"w": {"source": "s", "dtype": "array", "shape": [655360]}}
    )
    big = orphan.compose_event(data={"w": np.arange(655360.0)}, timestamps={"w": 1.0})
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    docs += [
        ("event", desc.compose_event(data={"x": 1.0 * i}, timestamps={"x": 1.0})) for i in range(3)
    ]
    docs.append(("stop", bundle.compose_stop()))
    publisher = Publisher(topic, kafka_broker)
    for name, doc in docs[:3]:
        publisher(name, doc)
    publisher("event", big)  # refused: its descriptor was never sent
    for name, doc in docs[3:]:
        publisher(name, doc)
    publisher.flush()
    size = len(wire.encode("event", big))
    assert size > 5 * 2**20
    for limit, whole in ((None, True), (2**20, False)):
        dead = f"dead{uuid.uuid4().hex[:6]}"
        extra = {} if limit is None else {"dead_letter_max_bytes": limit}
        worker = _worker(catalog, kafka_broker, topic, dead_letter_topic=dead, **extra)
        counters = worker.run(max_idle=4)
        assert counters.dead_lettered == 1
        (letter,) = dead_letters(kafka_broker, dead, 1)
        headers = dict(letter.headers)
        assert "never received" in headers["bluebroker-error"].decode()
        assert headers["bluebroker-offset"] == b"3"
        if whole:
            assert letter.value == wire.encode("event", big)
        else:
            assert letter.value == b"" and str(size).encode() in headers["bluebroker-value-dropped"]
        assert_run_matches(catalog[wire.catalog_path(topic)][bundle.start_doc["uid"]], docs)


def test_hostile_topic_names_are_dead_lettered(kafka_broker, new_topic, catalog):
    """Topics whose names give no catalog path (no beamline part; a leading '-') under a
    pattern subscription: their messages are dead-lettered with the reason, the good topic is
    written, nothing lands in another catalog, and the dead-letter topic (which the pattern
    also matches) is never read back."""
    tag = uuid.uuid4().hex[:8]
    good = new_topic(name=wire.topic_for(f"ok{tag}"))
    hostile = [new_topic(name=f".{tag}{wire.TOPIC_SUFFIX}"), new_topic(name=f"-{tag}.x")]
    dead = new_topic(name=f"dead{tag}")  # there from the start: the pattern matches it
    runs = {t: produce(kafka_broker, t, compose(3)) for t in [good, *hostile]}
    worker = _worker(catalog, kafka_broker, f".*{tag}.*", dead_letter_topic=dead)
    counters = worker.run(max_idle=4)
    refused = sum(len(runs[t]) for t in hostile)
    assert counters.dead_lettered == refused
    assert_run_matches(catalog[wire.catalog_path(good)][runs[good][0][1]["uid"]], runs[good])
    letters = dead_letters(kafka_broker, dead, refused)
    seen = {(dict(m.headers)["bluebroker-topic"].decode(), m.value) for m in letters}
    expected = {(t, wire.encode(n, d)) for t in hostile for n, d in runs[t]}
    assert seen == expected
    reasons = {dict(m.headers)["bluebroker-error"].decode() for m in letters}
    assert any("no beamline part" in r for r in reasons), reasons
    assert any("not a catalog path" in r for r in reasons), reasons
    # had the worker read its own dead letters back, they would be runs in dead<tag>/raw
    assert sorted(p for p in catalog.catalog_paths() if tag in p) == [f"ok{tag}/raw"]


def test_any_error_placing_one_message_dead_letters_only_that_message(
    kafka_broker, new_topic, catalog, monkeypatch
):
    """An error nobody foresaw while writing one document (here injected into the writer)
    dead-letters that message with its reason; the batch's other messages are written."""
    from bluebroker.ingest.writer import CatalogWriter

    docs = compose(10)
    poison = docs[5][1]["uid"]
    original = CatalogWriter.write_many

    def write_many(self, pairs, **kw):
        pairs = list(pairs)
        if any(doc.get("uid") == poison for _, doc in pairs):
            raise RuntimeError("an unforeseen failure")
        return original(self, pairs, **kw)

    monkeypatch.setattr(CatalogWriter, "write_many", write_many)
    topic, dead = new_topic(), f"dead{uuid.uuid4().hex[:6]}"
    produce(kafka_broker, topic, docs)
    counters = _worker(catalog, kafka_broker, topic, dead_letter_topic=dead).run(max_idle=4)
    assert counters.dead_lettered == 1 and counters.written == len(docs) - 1
    (letter,) = dead_letters(kafka_broker, dead, 1)
    headers = dict(letter.headers)
    assert "RuntimeError: an unforeseen failure" in headers["bluebroker-error"].decode()
    assert headers["bluebroker-offset"] == b"5"
    run = catalog[wire.catalog_path(topic)][docs[0][1]["uid"]]
    assert len(run["primary"]["data"]) == 9


def test_a_dead_ingest_thread_is_restarted_and_loses_nothing(
    kafka_broker, new_topic, catalog, monkeypatch
):
    """The worker thread dies on its first batch (an injected bug): the supervisor logs it,
    shows it in its health, starts a new worker, and that one writes the batch the dead one
    never committed."""
    from bluebroker.ingest.supervisor import IngestSupervisor

    original = KafkaIngestWorker._handle
    calls = []

    def handle(self, records):
        calls.append(len(records))
        if len(calls) == 1:
            raise RuntimeError("a bug in the worker")
        return original(self, records)

    monkeypatch.setattr(KafkaIngestWorker, "_handle", handle)
    topic = new_topic()
    docs = produce(kafka_broker, topic, compose(30))
    kafka = {
        "bootstrap_servers": kafka_broker,
        "topic": topic,
        "group_id": f"g{uuid.uuid4().hex[:6]}",
        "consumer_config": FAST_CONSUMER,
    }
    supervisor = IngestSupervisor(catalog, kafka, first_delay=0.1)
    supervisor.start()
    try:
        wait(lambda: supervisor.restarts == 1, what="a restart")
        wait(lambda: rows(catalog.uri, topic, docs[0][1]["uid"]) == 30, what="the run")
        health = supervisor.health()
        assert health["ok"] and health["state"] == "running" and health["restarts"] == 1
    finally:
        supervisor.stop()
    assert supervisor.health()["state"] == "stopped"
    _check_runs(catalog.uri, topic, [docs])


def test_serve_says_ingest_is_down_in_healthz_until_kafka_comes(tmp_path, RE, recorder):
    """`bluebroker serve --kafka` with the broker not there yet: /healthz answers 503 with the
    ingest's state and error (and the log says it), the worker is started again with backoff,
    and once the broker is up /healthz is 200 and published runs arrive."""
    import subprocess

    import httpx
    from bluesky import plans as bp
    from kafka.admin import KafkaAdminClient, NewTopic
    from ophyd.sim import det1

    from bluebroker.client import from_uri
    from tests.conftest import start_tansu

    broker_port, port = free_port(), free_port()
    broker = f"127.0.0.1:{broker_port}"
    topic = wire.topic_for(f"bl{uuid.uuid4().hex[:8]}")
    args = serve_kafka_args(
        f"sqlite:///{tmp_path}/c.db",
        port,
        broker,
        topic,
        "--consumer-config",
        "bootstrap_timeout_ms=1000",
    )
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/healthz"
    broker_proc = None

    def health():
        try:
            answer = httpx.get(url, timeout=5)
        except httpx.TransportError:
            assert server.poll() is None, log.read_text()[-3000:]
            return None
        return answer.status_code, answer.json()

    try:
        wait(lambda: (h := health()) and h[1]["ingest"]["restarts"] >= 1, what="a restart")
        status, body = health()
        assert status == 503 and body["status"] == "degraded", body
        assert body["ingest"]["ok"] is False and "KafkaTimeoutError" in body["ingest"]["error"]
        assert broker not in str(body)  # where the broker is stays in the log
        assert "kafka ingest stopped" in log.read_text() and broker in log.read_text()
        broker_proc, _ = start_tansu(tmp_path / "broker.log", port=broker_port)
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
        wait(lambda: (h := health()) and h[0] == 200, timeout=90, what="a healthy ingest")
        assert health()[1]["ingest"]["state"] == "running"
        RE.subscribe(Publisher(topic, broker))
        RE.subscribe(recorder)
        (uid,) = RE(bp.count([det1], num=3))

        def arrived():
            try:
                runs = from_uri(f"http://127.0.0.1:{port}")[wire.catalog_path(topic)]
            except KeyError:  # no catalog for the topic yet
                return False
            return uid in runs and runs[uid].stop is not None

        wait(arrived, timeout=90, what="the run over HTTP")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(timeout=10)
    assert code == 0, log.read_text()[-3000:]


def test_a_broken_catalog_is_waited_for_not_blamed_on_the_data(
    kafka_broker, new_topic, postgresql_uri
):
    """A table gone from the catalog (a migration half done, a schema dropped) is trouble of
    the database, not of the documents: the worker waits with its partitions paused instead of
    dead-lettering good documents, and writes them once the table is back."""
    import psycopg

    from tests.conftest import PG_URI

    catalog = open_catalog(postgresql_uri, create=True)
    schema = postgresql_uri.rsplit("%3D", 1)[1]
    topic, dead = new_topic(), f"dead{uuid.uuid4().hex[:6]}"
    worker = _worker(catalog, kafka_broker, topic, dead_letter_topic=dead)
    thread = _in_thread(worker)
    try:
        wait(lambda: worker.assigned, what="partitions")
        with psycopg.connect(PG_URI, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {schema}.runs RENAME TO runs_away")
        docs = produce(kafka_broker, topic, compose(5))
        wait(lambda: worker.counters.waits >= 2, what="the worker to wait")
        assert "UndefinedTable" in worker.waiting and worker.counters.dead_lettered == 0
        with psycopg.connect(PG_URI, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {schema}.runs_away RENAME TO runs")
        wait(lambda: rows(postgresql_uri, topic, docs[0][1]["uid"]) == 5, timeout=60)
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert worker.counters.dead_lettered == 0
    _check_runs(postgresql_uri, topic, [docs])
