"""The RunEngine's side of Kafka: what a scientist sees when the broker is fine, away, or
goes away in the middle of a scan."""

from __future__ import annotations

import socket

import pytest
from bluesky import plans as bp
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from ophyd.sim import det1, det2

from bluebroker.ingest import wire
from bluebroker.ingest.kafka import Publisher, PublishError
from tests.conftest import start_tansu


def _read_all(broker, topic):
    reader = KafkaConsumer(
        topic, bootstrap_servers=broker, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    got = [(m.key, wire.decode(m.value)) for m in reader]
    reader.close()
    return got


def test_a_run_is_on_the_topic_in_order_when_the_stop_returns(
    kafka_broker, new_topic, RE, recorder
):
    topic = new_topic()
    RE.subscribe(recorder)
    RE.subscribe(Publisher(topic, kafka_broker))
    (uid,) = RE(bp.count([det1, det2], num=20))
    got = _read_all(kafka_broker, topic)  # the stop flushed: nothing is still on its way
    assert {key for key, _ in got} == {uid.encode()}
    assert [(n, d["uid"]) for _, (n, d) in got] == [(n, d["uid"]) for n, d in recorder]
    assert got[-1][1][1] == recorder[-1][1]


def test_an_unreachable_broker_is_said_when_the_publisher_is_made():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PublishError, match=f"could not reach Kafka at 127.0.0.1:{port} within"):
        Publisher("bmm.bluesky.runengine.documents", f"127.0.0.1:{port}", connect_timeout=1)


def test_a_broker_gone_mid_scan_stops_the_scan_with_a_reason(tmp_path, RE):
    proc, broker = start_tansu(tmp_path / "broker.log")
    try:
        topic = wire.topic_for("bmm")
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
        publisher = Publisher(topic, broker, max_pending=50, block_ms=50)
        RE.subscribe(publisher)
        RE(bp.count([det1], num=5))  # fine while the broker is there
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # The buffer fills with documents nobody takes; the next one is refused, not queued
    # forever, and the scan ends with an error that says what to check.
    with pytest.raises(PublishError, match=r"waiting for the Kafka broker .* Check the broker"):
        RE(bp.count([det1], num=200))


def test_a_missing_topic_is_said_when_the_publisher_is_made(kafka_broker):
    # allow_auto_create_topics (librdkafka's allow.auto.create.topics, underscores for dots)
    # keeps the broker from creating the topic on our behalf.
    topic = wire.topic_for("nowhere")
    with pytest.raises(PublishError, match=f"has no topic '{topic}'.*create it"):
        Publisher(topic, kafka_broker, allow_auto_create_topics=False)


def test_delivery_reports_stay_the_publishers_own(kafka_broker):
    with pytest.raises(ValueError, match="on_delivery is the Publisher's own"):
        Publisher(wire.topic_for("bmm"), kafka_broker, on_delivery=print)
