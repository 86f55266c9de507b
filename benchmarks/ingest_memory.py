"""Resident memory of one ingest worker over a long run: must stay flat, whatever the run's
length (a worker that kept per-run state per event would grow until the beamline's longest
fly scan killed it).

One run of ``--events`` events (1,000,000 by default; 5 float fields, the shared workload) is
published event by event with bluebroker's Publisher to a real Kafka-protocol broker (Tansu);
a ``bluebroker ingest kafka`` process writes it into a SQLite or PostgreSQL catalog. The
worker's RSS (``/proc/<pid>/status``) and the rows written so far are sampled every
``--every`` seconds. Prints one JSON object on stdout: the samples, RSS at 10 % of the run,
at the end and at its peak, and the growth between 10 % and the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from kafka_ingest import start_broker  # noqa: E402

EXE = str(Path(sys.executable).with_name("bluebroker"))


def log(*args: object) -> None:
    print("[memory]", *args, file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def rows_written(uri: str, path: str, uid: str) -> int:
    from bluebroker.catalog import open_catalog

    catalog = open_catalog(uri)
    try:
        runs = catalog[path]
        return len(runs[uid]["primary"]["data"]) if uid in runs else 0
    except KeyError:
        return 0
    finally:
        catalog.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    ap.add_argument(
        "--postgresql", action="store_true", help="write into a new PostgreSQL database"
    )
    args = ap.parse_args(argv)

    from kafka.admin import KafkaAdminClient, NewTopic

    from bluebroker.ingest import wire
    from bluebroker.ingest.kafka import Publisher

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bluebroker-memory-"))
        if args.postgresql:
            from live_common import PG, scratch_schema

            uri = stack.enter_context(scratch_schema(PG, "memory"))
        else:
            uri = f"sqlite:///{tmp}/catalog.db"
        broker, servers = start_broker(tmp)
        worker = None
        try:
            topic = wire.topic_for(f"mem{uuid.uuid4().hex[:6]}")
            path = wire.catalog_path(topic)
            admin = KafkaAdminClient(bootstrap_servers=servers)
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
            admin.close()
            worker_log = Path(tmp) / "worker.log"
            with open(worker_log, "wb") as out:
                worker = subprocess.Popen(
                    [
                        EXE,
                        "ingest",
                        "kafka",
                        "--bootstrap-servers",
                        servers,
                        "--topic",
                        topic,
                        "--catalog",
                        uri,
                        "--group-id",
                        "memory",
                        "--consumer-config",
                        "max_poll_interval_ms=10000",
                        "--consumer-config",
                        "session_timeout_ms=10000",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 120
            while "partitions assigned" not in worker_log.read_text(errors="replace"):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start: {worker_log.read_text()}")
                time.sleep(0.1)
            uid = workload.run_uid(0)
            publisher = Publisher(topic, servers, max_pending=10**6)

            def publish() -> None:
                for name, doc in workload.run_documents(0, args.events):
                    publisher(name, doc)
                publisher.flush()

            sender = threading.Thread(target=publish, daemon=True)
            started = time.monotonic()
            sender.start()
            samples: list[tuple[float, float, int]] = []
            while True:
                rows = rows_written(uri, path, uid)
                samples.append((time.monotonic() - started, rss_mb(worker.pid), rows))
                if rows >= args.events:
                    break
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited: {worker_log.read_text()[-2000:]}")
                time.sleep(args.every)
            took = samples[-1][0]
            log(f"{args.events:,} events in {took:.1f} s; RSS {samples[-1][1]:.0f} MB at the end")
        finally:
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
            broker.terminate()
            broker.wait(timeout=10)
    tenth = next(s for s in samples if s[2] >= args.events // 10)
    result = {
        "events": args.events,
        "catalog": "postgresql" if uri.startswith("postgresql") else "sqlite",
        "seconds": took,
        "events_per_s": args.events / took,
        "rss_at_10pct_mb": tenth[1],
        "rss_end_mb": samples[-1][1],
        "rss_peak_mb": max(s[1] for s in samples),
        "growth_after_10pct_mb": samples[-1][1] - tenth[1],
        "samples": samples,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
