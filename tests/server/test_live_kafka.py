"""The whole live path with every part real and separate: a RunEngine publishing to Kafka, the
ingest worker writing to PostgreSQL, two server processes, a subscriber on each. Both see
every event exactly once and in order, one of them across a server killed and restarted."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from ophyd.sim import det1, det2, motor

from bluebroker.catalog import open_catalog
from bluebroker.client import from_uri
from bluebroker.ingest import wire
from bluebroker.ingest.kafka import Publisher
from tests.conftest import FAST_CONSUMER
from tests.server.test_live import wait_until

EXE = str(Path(sys.executable).with_name("bluebroker"))
EVENTS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(uri: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [EXE, "serve", "--catalog", uri, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"bluebroker serve on port {port} did not start") from None
            time.sleep(0.1)


def start_worker(broker: str, topic: str, uri: str) -> subprocess.Popen:
    args = [EXE, "ingest", "kafka", "--bootstrap-servers", broker, "--topic", topic]
    args += ["--catalog", uri, "--group-id", f"g{uuid.uuid4().hex[:6]}"]
    for key, value in {**FAST_CONSUMER, "fetch_max_wait_ms": 20}.items():
        args += ["--consumer-config", f"{key}={value}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def slow_scan(gate: threading.Event):
    """A scan that takes its first point, then waits for the test to be watching."""
    steps = []

    def per_step(detectors, step, pos_cache):
        while steps and not gate.is_set():
            yield from bps.sleep(0.05)
        steps.append(step)
        yield from bps.one_nd_step(detectors, step, pos_cache)
        yield from bps.sleep(0.03)

    return bp.scan([det1, det2], motor, -1, 1, EVENTS, per_step=per_step)


def test_two_servers_see_every_event_once_across_a_restart(
    kafka_broker, new_topic, postgresql_uri, RE
):
    open_catalog(postgresql_uri, create=True).close()
    topic = new_topic()
    path = wire.catalog_path(topic)
    ports = [free_port(), free_port()]
    procs = [start_worker(kafka_broker, topic, postgresql_uri)]
    servers = [start_server(postgresql_uri, p) for p in ports]
    procs += servers
    subs = []
    try:
        clients = [from_uri(f"http://127.0.0.1:{p}") for p in ports]
        RE.subscribe(Publisher(topic, kafka_broker))
        gate = threading.Event()
        out: list = []
        acquiring = threading.Thread(target=lambda: out.extend(RE(slow_scan(gate))), daemon=True)
        acquiring.start()
        wait_until(lambda: all(path in _paths(c) and len(c[path]) == 1 for c in clients))
        uid = clients[0][path].values().last().uid
        wait_until(lambda: all("primary" in c[path][uid] for c in clients))

        seen_rows: list[list] = [[], []]
        lives = []
        for client, rows in zip(clients, seen_rows, strict=True):
            table = client[path][uid]["primary"]["data"]
            subs.append(table.subscribe(rows.append, start=1))
            lives.append(client[path][uid]["primary"].live())
        gate.set()
        wait_until(lambda: len(seen_rows[1]) >= 10)

        # Kill the second server mid-run and start it again on its port: its subscribers
        # reconnect by themselves and resume from the next sequence number.
        servers[1].send_signal(signal.SIGKILL)
        servers[1].wait(timeout=10)
        time.sleep(0.5)
        servers[1] = start_server(postgresql_uri, ports[1])
        procs.append(servers[1])

        acquiring.join(timeout=120)
        assert out == [uid]
        for live in lives:
            live.wait_for(None, timeout=60)
        wait_until(lambda: all(r and r[-1].type == "run-stopped" for r in seen_rows))
        final = clients[0][path][uid]["primary"]["data"].read()
        assert len(final) == EVENTS
        for rows, live in zip(seen_rows, lives, strict=True):
            assert [u.sequence for u in rows] == list(range(1, len(rows) + 1))
            seq_nums = [s for u in rows if u.type == "rows-appended" for s in u.data["seq_num"]]
            assert seq_nums == list(range(1, EVENTS + 1))  # every event once, in order
            df = live.read()
            assert df.index.tolist() == final.index.tolist()
            for column in final.columns:
                np.testing.assert_array_equal(df[column].to_numpy(), final[column].to_numpy())
        assert subs[1].reconnects >= 1 and lives[1]._sub.reconnects >= 1
        assert subs[0].reconnects == 0
    finally:
        for sub in subs:
            sub.close()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _paths(client) -> set[str]:
    found = set()
    for top in client:
        for name in client[top]:
            found.add(f"{top}/{name}")
    return found
