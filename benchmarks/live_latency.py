"""End-to-end live latency: from ``Publisher(name, doc)`` on the RunEngine side to the
subscriber's callback, through Kafka, the ingest worker, PostgreSQL and the server.

bluebroker's side: a Tansu broker, ``bluebroker ingest kafka`` writing to a fresh PostgreSQL
schema, ``bluebroker serve`` on the same catalog (a separate process, so the notice travels by
``LISTEN/NOTIFY``), and ``--subscribers`` client subscriptions to the run's ``primary/data``
table. A run's start and descriptor are published first; once the stream exists and every
subscriber is connected, ``--events`` single events are published at ``--rate`` per second.
Latency = arrival in a subscriber's callback - the moment just before ``Publisher(...)``, for
every (subscriber, event). The peer (Tiled 0.2.x streaming, ``peer_live.py`` in the peer venv)
is measured the same way on the same broker unless ``--skip-peer``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
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
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from kafka_ingest import start_broker  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"
# Low-latency consumer settings, the same on both sides.
CONSUMER = {
    "fetch_max_wait_ms": 2,
    "max_poll_interval_ms": 5000,
    "session_timeout_ms": 5000,
    "heartbeat_interval_ms": 1000,
}


def log(*args: object) -> None:
    print("[live]", *args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": statistics.median(ordered),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": ordered[-1],
    }


def documents(events: int) -> tuple[list, list, tuple]:
    """A start and descriptor, ``events`` single events (5 floats), a stop."""
    import numpy as np
    from event_model import compose_run

    run = compose_run(metadata={"plan_name": "live-bench", "scan_id": 1})
    keys = {f"f{i}": {"dtype": "number", "shape": [], "source": "sim"} for i in range(5)}
    desc = run.compose_descriptor(data_keys=keys, name="primary")
    rng = np.random.default_rng(0)
    evs = []
    for i in range(events):
        now = time.time()
        data = {k: float(rng.random()) for k in keys}
        evs.append(
            desc.compose_event(data=data, timestamps=dict.fromkeys(keys, now), seq_num=i + 1)
        )
    return (
        [("start", run.start_doc), ("descriptor", desc.descriptor_doc)],
        evs,
        ("stop", run.compose_stop()),
    )


def ours(servers: str, events: int, rate: float, subscribers: int) -> dict:
    import psycopg

    from bluebroker.catalog import open_catalog
    from bluebroker.client import from_uri
    from bluebroker.ingest import wire
    from bluebroker.ingest.kafka import Publisher

    schema = f"live_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    uri = f"{PG}?options=-csearch_path%3D{schema}"
    exe = str(Path(sys.executable).with_name("bluebroker"))
    procs = []
    subs = []
    try:
        open_catalog(uri, create=True).close()
        topic = f"live{uuid.uuid4().hex[:6]}.bluesky.runengine.documents"
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=servers)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
        worker = [exe, "ingest", "kafka", "--bootstrap-servers", servers, "--topic", topic]
        worker += ["--catalog", uri, "--group-id", "live-bench"]
        for key, value in CONSUMER.items():
            worker += ["--consumer-config", f"{key}={value}"]
        procs.append(subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        port = free_port()
        procs.append(
            subprocess.Popen(
                [exe, "serve", "--catalog", uri, "--port", str(port)], stdout=subprocess.DEVNULL
            )
        )
        head, evs, stop = documents(events)
        publisher = Publisher(topic, servers)
        for name, doc in head:
            publisher(name, doc)
        publisher.flush()
        uid = head[0][1]["uid"]
        path = wire.catalog_path(topic)
        deadline = time.monotonic() + 120
        while True:
            try:
                client = from_uri(f"http://127.0.0.1:{port}")
                if "primary" in client[path][uid]:
                    break
            except (ConnectionError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the run never appeared on the server")
            time.sleep(0.1)
        log(f"run is on the server; connecting {subscribers} subscribers")
        table = client[path][uid]["primary"]["data"]
        arrivals: list[dict[int, float]] = [{} for _ in range(subscribers)]
        recorded: dict[int, float] = {}  # when the writer recorded each event's change
        duplicates = 0

        def callback_for(seen: dict[int, float]):
            def callback(update) -> None:
                nonlocal duplicates
                now = time.time()
                if update.type != "rows-appended":
                    return
                for seq in update.data["seq_num"].tolist():
                    if seq in seen:
                        duplicates += 1
                    seen[seq] = now
                    recorded[seq] = update["timestamp"]

            return callback

        for seen in arrivals:
            subs.append(table.subscribe(callback_for(seen)))
        published: dict[int, float] = {}
        period = 1.0 / rate
        t0 = time.perf_counter()
        for i, doc in enumerate(evs):
            target = t0 + i * period
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            published[doc["seq_num"]] = time.time()
            publisher("event", doc)
        publisher(*stop)
        publisher.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(len(s) < events for s in arrivals):
            time.sleep(0.1)
        samples = [(at - published[seq]) * 1000 for seen in arrivals for seq, at in seen.items()]
        ingest = [(recorded[s] - published[s]) * 1000 for s in recorded]
        return {
            "system": "bluebroker (Kafka -> ingest worker -> PostgreSQL -> NOTIFY -> server)",
            "subscribers": subscribers,
            "events": events,
            "received": len(samples),
            "expected": subscribers * events,
            "duplicates": duplicates,
            **percentiles(samples),
            # the part from Publisher to the writer's change record (Kafka, worker, SQL)
            "ingest_p50_ms": statistics.median(ingest) if ingest else None,
        }
    finally:
        for sub in subs:
            sub.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args(argv)
    common = ["--events", str(args.events), "--rate", str(args.rate)]
    common += ["--subscribers", str(args.subscribers)]
    with tempfile.TemporaryDirectory(prefix="bluebroker-live-") as tmp:
        broker, servers = start_broker(tmp)
        try:
            mine = ours(servers, args.events, args.rate, args.subscribers)
            log(json.dumps(mine))
            peer = None
            if not args.skip_peer:
                from peer_env import ensure_peer_venv

                python = ensure_peer_venv(ROOT)
                done = subprocess.run(
                    [
                        str(python),
                        str(HERE / "peer_live.py"),
                        "--bootstrap-servers",
                        servers,
                        *common,
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                    check=False,
                )
                if done.returncode == 0 and done.stdout.strip():
                    peer = json.loads(done.stdout.strip().splitlines()[-1])
                else:
                    log(f"the peer's run failed (exit {done.returncode})")
                log(json.dumps(peer))
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    print(json.dumps({"bluebroker": mine, "peer": peer}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
