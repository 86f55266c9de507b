"""What both sides of the live latency benchmark share, so they are measured the same way.

Imported from bluebroker's venv (``live_latency.py``) and from the peer's venv
(``peer_live.py``): standard library, ``event_model`` and ``numpy`` only.

The protocol, identical on both sides:

1. publish a start, a descriptor and one warm-up event (the peer creates its event table on
   the first event, and a subscription needs the table to exist);
2. once the stream is on the server, connect every subscriber;
3. publish ``events`` single events at ``rate`` per second, noting the wall time just before
   each publish call;
4. latency = arrival in a subscriber's callback - that time, for every (subscriber, event).

Publishing happens in a process of its own (``live_publish.py``, started by
:class:`PublisherProcess`), as a RunEngine does; the subscribers share the benchmark's.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

# Low-latency consumer settings, passed to kafka-python on both sides. Tansu holds a fetch
# for the full ``fetch_max_wait_ms`` (Apache Kafka answers as soon as data arrive), so the
# Kafka default of 500 ms would measure the broker, not the systems. But Tansu also answers a
# fetch with *no records* whenever reading takes longer than the wait (Apache Kafka returns
# what it has): 2 ms is fine for these short, light runs; the soak, under load, uses 100 ms.
CONSUMER = {
    "fetch_max_wait_ms": 2,
    "max_poll_interval_ms": 5000,
    "session_timeout_ms": 5000,
    "heartbeat_interval_ms": 1000,
}
# `bluebroker serve` needs a key since the sign-in work: the benchmarks' servers and clients
# share one, through the environment both read (the client's from_uri and serve's --api-key)
BENCH_KEY = os.environ.setdefault("BLUEBROKER_API_KEY", "bluebroker-benchmarks")
AUTH = {"Authorization": f"Bearer {BENCH_KEY}"}
STREAM = "primary"
FIELDS = tuple(f"f{i}" for i in range(5))


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of latency samples in milliseconds (empty if there are none)."""
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
    """``(head, measured, stop)``.

    ``head`` is a start, a ``primary`` descriptor (5 float fields) and the warm-up event
    (seq_num 1); ``measured`` holds ``events`` single events with seq_num 2..events+1.
    """
    import numpy as np
    from event_model import compose_run

    run = compose_run(metadata={"plan_name": "live-bench", "scan_id": 1})
    keys = {f: {"dtype": "number", "shape": [], "source": "sim"} for f in FIELDS}
    desc = run.compose_descriptor(data_keys=keys, name=STREAM)
    rng = np.random.default_rng(0)
    evs = []
    for i in range(events + 1):
        now = time.time()
        data = {k: float(rng.random()) for k in keys}
        evs.append(
            desc.compose_event(data=data, timestamps=dict.fromkeys(keys, now), seq_num=i + 1)
        )
    head = [("start", run.start_doc), ("descriptor", desc.descriptor_doc), ("event", evs[0])]
    return head, evs[1:], ("stop", run.compose_stop())


def publish_paced(publish, docs: list[dict], rate: float) -> dict[int, float]:
    """Publish ``docs`` as events at ``rate`` per second; the wall time before each, by seq_num."""
    published: dict[int, float] = {}
    period = 1.0 / rate
    t0 = time.perf_counter()
    for i, doc in enumerate(docs):
        delay = t0 + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        published[doc["seq_num"]] = time.time()
        publish("event", doc)
    return published


class PublisherProcess:
    """``live_publish.py`` run by ``python``: the run's head is on the topic once this
    returns (``uid``); :meth:`go` publishes the measured events and returns their times."""

    def __init__(
        self, python: str, kind: str, servers: str, topic: str, events: int, rate: float
    ) -> None:
        script = str(Path(__file__).resolve().with_name("live_publish.py"))
        command = [python, script, "--kind", kind, "--bootstrap-servers", servers]
        command += ["--topic", topic, "--events", str(events), "--rate", str(rate)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.uid = self._read()["uid"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the publisher process exited (code {self.proc.wait()})")
        return json.loads(line)

    def go(self) -> dict[int, float]:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        published = self._read()["published"]
        self.proc.wait(timeout=30)
        return {int(seq): t for seq, t in published.items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Arrivals:
    """What the subscribers received, added to from their callbacks' threads.

    ``seen[i]`` maps seq_num to arrival time for subscriber ``i``; ``recorded`` maps seq_num
    to the server's own time stamp for the change (when the writer's notice was made), which
    splits the path into Kafka + writer and notice + server + client.
    """

    def __init__(self, subscribers: int) -> None:
        self.seen: list[dict[int, float]] = [{} for _ in range(subscribers)]
        self.recorded: dict[int, float] = {}
        self.duplicates = 0
        self._lock = threading.Lock()

    def add(self, subscriber: int, seqs: list[int], now: float, stamp: float) -> None:
        seen = self.seen[subscriber]
        with self._lock:
            for seq in seqs:
                if seq in seen:
                    self.duplicates += 1
                seen[seq] = now
                self.recorded[seq] = stamp


def summary(system: str, arrivals: Arrivals, published: dict[int, float], rate: float) -> dict:
    """The JSON both sides print: counts, latency percentiles, and the ingest part's median."""
    samples = [
        (at - published[seq]) * 1000
        for seen in arrivals.seen
        for seq, at in seen.items()
        if seq in published
    ]
    recorded = arrivals.recorded
    ingest = [(recorded[s] - published[s]) * 1000 for s in recorded if s in published]
    return {
        "system": system,
        "rate": rate,
        "subscribers": len(arrivals.seen),
        "events": len(published),
        "received": len(samples),
        "expected": len(arrivals.seen) * len(published),
        "duplicates": arrivals.duplicates,
        **percentiles(samples),
        "ingest_p50_ms": statistics.median(ingest) if ingest else None,
    }


def wait_for_arrivals(arrivals: Arrivals, published: dict[int, float]) -> None:
    """Return once every subscriber has every published event, or nothing new came for 30 s.

    A system that falls behind the publishing rate is given the time to catch up (its
    latencies then show the backlog) instead of being cut off at a fixed deadline.
    """
    last_total, last_change = -1, time.monotonic()
    while True:
        counts = [len(published.keys() & seen.keys()) for seen in arrivals.seen]
        if all(n == len(published) for n in counts):
            return
        total = sum(counts)
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > 30:
            return
        time.sleep(0.1)


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """Terminate every process, then wait for each (killing one that takes over 30 s)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# the local test server's database; benchmarks make a schema of their own in it
PG = os.environ.get("BLUEBROKER_TEST_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def scratch_schema(pg: str, prefix: str):
    """A fresh PostgreSQL schema for one benchmark's catalog; yields a catalog URI for it and
    drops the schema afterwards (our side only: psycopg is imported here)."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
