"""A partition that lags while the broker brings none of its messages is noticed: the worker
logs it, restarts the partition's fetch, and /healthz (through the supervisor) says so.

Tansu answers every fetch with no records when ``fetch_max_wait_ms`` is 0 (and whenever reading
takes longer than the wait, which is how the soak found it): a real broker, really stalled."""

from __future__ import annotations

import logging
import threading
import uuid

from bluebroker.ingest.lag import LagWatch
from bluebroker.ingest.supervisor import IngestSupervisor
from tests.conftest import FAST_CONSUMER
from tests.ingest.kafka_workers import compose, produce, rows, wait


def _tp(partition: int):
    from kafka import TopicPartition

    return TopicPartition("t", partition)


def test_lag_watch_reports_a_lagging_partition_that_does_not_move():
    now = [0.0]
    watch = LagWatch(stall_after=10, clock=lambda: now[0])
    a, b, c = _tp(0), _tp(1), _tp(2)
    assert watch.update({a: 5, b: 7, c: 3}, {a: 9, b: 7, c: 8}) == []
    now[0] = 9
    assert watch.update({a: 5, b: 7, c: 4}, {a: 12, b: 9, c: 9}) == []  # c moved
    now[0] = 10
    due = watch.update({a: 5, b: 7, c: 4}, {a: 12, b: 9, c: 9})
    assert [(p.partition, p.lag) for p in due] == [(0, 7)]  # b lags only since 9 s
    assert [p.partition for p in watch.stalled()] == [0]
    now[0] = 15
    assert watch.update({a: 5, b: 7, c: 4}, {a: 13, b: 9, c: 9}) == []  # reported already
    now[0] = 20
    due = watch.update({a: 5, b: 7, c: 4}, {a: 13, b: 9, c: 9})
    assert sorted(p.partition for p in due) == [0, 1, 2]  # a again, after stall_after
    now[0] = 21
    watch.update({a: 6, b: 9, c: 4}, {a: 13, b: 9, c: 9})  # a moves, b caught up
    assert [p.partition for p in watch.stalled()] == [2]
    assert watch.total() == 7 + 0 + 5
    watch.update({c: 4}, {c: 9})  # a and b revoked: forgotten
    assert list(watch.partitions) == [c]


def test_a_partition_the_broker_starves_is_reported_and_nothing_is_lost(
    kafka_broker, new_topic, catalog, caplog
):
    topic = new_topic()
    docs = produce(kafka_broker, topic, compose(20))
    group = f"g{uuid.uuid4().hex[:6]}"
    starved = {
        "bootstrap_servers": kafka_broker,
        "topic": topic,
        "group_id": group,
        "report_every": 0.2,
        "stall_after": 1.0,
        "consumer_config": {**FAST_CONSUMER, "fetch_max_wait_ms": 0},
    }
    supervisor = IngestSupervisor(catalog, starved)
    caplog.set_level(logging.WARNING, logger="bluebroker.ingest.consumer")
    supervisor.start()
    try:
        wait(lambda: supervisor.health()["state"] == "stalled", what="the stall in health")
        health = supervisor.health()
        assert health["ok"] is False
        # (Tansu's end offset counts a batch of records as one: the lag is at least 1)
        [stalled] = health["stalled"]
        assert (stalled["topic"], stalled["partition"]) == (topic, 0) and stalled["lag"] >= 1
        wait(lambda: "restarting its fetch" in caplog.text, what="the warning")
        assert f"partition {topic}[0] lags " in caplog.text
        assert rows(catalog.uri, topic, docs[0][1]["uid"]) == 0
    finally:
        supervisor.stop()

    # the stalled worker committed nothing: a worker the broker serves takes every message
    from bluebroker.ingest.consumer import KafkaIngestWorker

    worker = KafkaIngestWorker(
        catalog, kafka_broker, topic, group_id=group, consumer_config=FAST_CONSUMER
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait(lambda: rows(catalog.uri, topic, docs[0][1]["uid"]) == 20, what="the run")
    finally:
        worker.stop()
        thread.join(30)
    assert worker.counters.duplicates == 0 and worker.lag.stalled() == []
