"""Helpers for the Kafka tests: worker processes that say when they are ready, runs published
to chosen partitions, committed offsets, and waiting on conditions (never on fixed sleeps)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from event_model import compose_run

from bluebroker.catalog import open_catalog
from bluebroker.ingest import wire
from tests.conftest import FAST_CONSUMER

READY = "partitions assigned"


def wait(predicate, timeout: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


class WorkerProcess:
    """``bluebroker ingest kafka`` in a subprocess, its log (stderr) in a file."""

    def __init__(self, broker: str, topic: str, uri: str, group: str, log: Path, batch=50):
        args = [
            str(Path(sys.executable).with_name("bluebroker")),
            "ingest",
            "kafka",
            "--bootstrap-servers",
            broker,
            "--topic",
            topic,
            "--catalog",
            uri,
            "--group-id",
            group,
            "--batch-size",
            str(batch),
        ]
        for key, value in FAST_CONSUMER.items():
            args += ["--consumer-config", f"{key}={value}"]
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, words: str, timeout: float = 60.0) -> None:
        """Until the worker logs ``words`` (it fails at once if the worker exits instead)."""

        def logged():
            if words in self.text():
                return True
            assert self.proc.poll() is None, f"worker exited: {self.text()[-3000:]}"
            return False

        wait(logged, timeout, f"{words!r} in the worker's log")

    def ready(self, timeout: float = 90.0) -> WorkerProcess:
        """Once the group has given it partitions: its signal handlers are in place."""
        self.wait_for(READY, timeout)
        return self


def serve_kafka_args(catalog_uri: str, port: int, broker: str, topic: str, *extra: str) -> list:
    """The command line of ``bluebroker serve --kafka`` with the tests' consumer settings."""
    args = [str(Path(sys.executable).with_name("bluebroker")), "serve", "--catalog", catalog_uri]
    args += ["--port", str(port), "--kafka", broker, "--topic", topic, *extra]
    for key, value in FAST_CONSUMER.items():
        args += ["--consumer-config", f"{key}={value}"]
    return args


def start_worker(broker, topic, uri, group, log_dir: Path, batch=50) -> WorkerProcess:
    log = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    return WorkerProcess(broker, topic, uri, group, log, batch)


def compose(events: int) -> list[tuple[str, dict]]:
    """A run with ``events`` events, composed with event-model."""
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
    )
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    docs += [
        ("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": 1.0}))
        for i in range(events)
    ]
    docs.append(("stop", bundle.compose_stop()))
    return docs


def produce(broker: str, topic: str, docs, partition: int | None = None) -> list:
    """Publish ``docs`` in order (to ``partition``, or keyed by run as the Publisher does)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker, max_request_size=8 * 2**20)
    key = docs[0][1]["uid"].encode()
    for name, doc in docs:
        producer.send(topic, wire.encode(name, doc), key=key, partition=partition)
    producer.flush()
    producer.close()
    return docs


def rows(uri: str, topic: str, uid: str) -> int:
    cat = open_catalog(uri)
    try:
        runs = cat[wire.catalog_path(topic)]
        return len(runs[uid]["primary"]["data"]) if uid in runs else 0
    except KeyError:
        return 0
    finally:
        cat.close()


def committed(broker: str, topic: str, group: str) -> dict[int, int | None]:
    """The group's committed offset per partition of ``topic`` (None if none)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        return {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)}
    finally:
        consumer.close(autocommit=False)


def dead_letters(broker: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    """The records on a dead-letter topic, once at least ``expected`` are there."""
    from kafka import KafkaConsumer

    reader = KafkaConsumer(topic, bootstrap_servers=broker, auto_offset_reset="earliest")
    got: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=500).values():
                got += records
    finally:
        reader.close()
    return got
