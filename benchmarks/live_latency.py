"""End-to-end live latency: from ``Publisher(name, doc)`` on the RunEngine side to the
subscriber's callback, through Kafka, the ingest worker, PostgreSQL and the server.

bluebroker's side: a Tansu broker, ``bluebroker ingest kafka`` writing to a fresh PostgreSQL
schema, ``bluebroker serve`` on the same catalog (a separate process, so the notice travels by
``LISTEN/NOTIFY``), and ``--subscribers`` client subscriptions to the run's ``primary/data``
table; the documents come from a publisher process of their own (``live_publish.py``).
The protocol (warm-up, paced events, what is timed) is in ``live_common.py``. The peer (Tiled
0.2.x streaming, ``peer_live.py`` in the peer venv) is measured the same way on the same
broker in the same run unless ``--skip-peer``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
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
from live_common import (  # noqa: E402
    CONSUMER,
    Arrivals,
    PublisherProcess,
    free_port,
    scratch_schema,
    stop_processes,
    summary,
    wait_for_arrivals,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"


def log(*args: object) -> None:
    print("[live]", *args, file=sys.stderr, flush=True)


def ours(servers: str, events: int, rate: float, subscribers: int) -> dict:
    from bluebroker.catalog import open_catalog
    from bluebroker.client import from_uri
    from bluebroker.ingest import wire

    with scratch_schema(PG, "live") as uri:
        exe = str(Path(sys.executable).with_name("bluebroker"))
        procs = []
        subs = []
        publisher = None
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
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            procs.append(subprocess.Popen(worker, **quiet))
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [exe, "serve", "--catalog", uri, "--port", str(port)], stdout=subprocess.DEVNULL
                )
            )
            publisher = PublisherProcess(sys.executable, "bluebroker", servers, topic, events, rate)
            uid = publisher.uid
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
            arrivals = Arrivals(subscribers)

            def callback_for(i: int):
                def callback(update) -> None:
                    now = time.time()
                    if update.type == "rows-appended":
                        seqs = update.data["seq_num"].tolist()
                        arrivals.add(i, seqs, now, update["timestamp"])

                return callback

            for i in range(subscribers):
                subs.append(table.subscribe(callback_for(i)))
            published = publisher.go()
            wait_for_arrivals(arrivals, published)
            system = "bluebroker (Kafka -> ingest worker -> PostgreSQL -> NOTIFY -> server)"
            return summary(system, arrivals, published, rate)
        finally:
            if publisher is not None:
                publisher.close()
            for sub in subs:
                sub.close()
            stop_processes(procs)


def run_peer(servers: str, events: int, rate: float, subscribers: int) -> dict | None:
    """``peer_live.py`` in the peer venv on the same broker; its JSON, or None if it failed."""
    from peer_env import ensure_peer_venv

    python = ensure_peer_venv(ROOT)
    command = [str(python), str(HERE / "peer_live.py"), "--bootstrap-servers", servers]
    command += ["--events", str(events), "--rate", str(rate), "--subscribers", str(subscribers)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        log(f"the peer's run failed (exit {done.returncode})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument(
        "--peer-low-rate",
        type=float,
        default=10.0,
        help="also measure the peer at this rate (0 to skip): a rate it sustains, so its "
        "per-event latency shows apart from the backlog it builds at --rate",
    )
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args(argv)
    peer = peer_low = None
    with tempfile.TemporaryDirectory(prefix="bluebroker-live-") as tmp:
        broker, servers = start_broker(tmp)
        try:
            mine = ours(servers, args.events, args.rate, args.subscribers)
            log(json.dumps(mine))
            if not args.skip_peer:
                peer = run_peer(servers, args.events, args.rate, args.subscribers)
                log(json.dumps(peer))
                if args.peer_low_rate > 0:
                    # As many events as fit in 20 s at the low rate, to keep the run short.
                    events = min(args.events, int(args.peer_low_rate * 20))
                    peer_low = run_peer(servers, events, args.peer_low_rate, args.subscribers)
                    log(json.dumps(peer_low))
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    print(json.dumps({"bluebroker": mine, "peer": peer, "peer_low_rate": peer_low}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
