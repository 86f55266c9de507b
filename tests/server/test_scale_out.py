"""Scale-out, every part real and in its own process: three RunEngines publishing at once to a
four-partition topic, two ingest workers in one consumer group writing to PostgreSQL, two
server processes with subscribers on both. One worker is SIGKILLed and one server killed and
restarted while the runs acquire: every run arrives whole, and every subscriber sees every
event exactly once and in order (issue 20's proof, without Docker)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid

from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from ophyd.sim import SynAxis, SynGauss

from bluebroker.catalog import open_catalog
from bluebroker.client import from_uri
from bluebroker.ingest import wire
from bluebroker.ingest.kafka import Publisher
from tests.ingest.kafka_workers import start_worker
from tests.server.test_live import wait_until
from tests.server.test_live_kafka import _paths, free_port, start_server

EVENTS = 40
RUNS = 3


def gated_scan(gate: threading.Event, started: threading.Event, n: int):
    """A scan that takes its first point, then waits until every subscriber is watching. Each
    RunEngine has its own simulated motor and detectors (a device is staged by one plan)."""
    motor = SynAxis(name=f"motor{n}")
    detectors = [
        SynGauss(f"det{n}{k}", motor, f"motor{n}", center=0, Imax=i + 1, sigma=1)
        for i, k in enumerate("ab")
    ]

    def per_step(detectors, step, pos_cache):
        while started.is_set() and not gate.is_set():
            yield from bps.sleep(0.05)
        yield from bps.one_nd_step(detectors, step, pos_cache)
        started.set()
        yield from bps.sleep(0.1)  # the runs are still acquiring when the kills come

    return bp.scan(detectors, motor, -1, 1, EVENTS, per_step=per_step)


def _engine() -> tuple[RunEngine, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    return RunEngine({}, loop=loop, context_managers=[]), loop


def test_two_workers_two_servers_three_runengines_survive_kills(
    kafka_broker, new_topic, postgresql_uri, tmp_path
):
    open_catalog(postgresql_uri, create=True).close()
    topic, group = new_topic(partitions=4), f"g{uuid.uuid4().hex[:6]}"
    path = wire.catalog_path(topic)
    workers = [start_worker(kafka_broker, topic, postgresql_uri, group, tmp_path) for _ in "ab"]
    for worker in workers:
        worker.ready()
    ports = [free_port(), free_port()]
    servers = [start_server(postgresql_uri, port) for port in ports]
    procs = [w.proc for w in workers] + servers
    engines = [_engine() for _ in range(RUNS)]
    subs: list = []
    try:
        gate = threading.Event()
        uids: list[str] = []
        threads = []
        for n, (engine, _) in enumerate(engines):
            engine.subscribe(Publisher(topic, kafka_broker))
            plan = gated_scan(gate, threading.Event(), n)
            thread = threading.Thread(
                target=lambda e=engine, p=plan: uids.extend(e(p)),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        clients = [from_uri(f"http://127.0.0.1:{port}") for port in ports]
        wait_until(
            lambda: all(path in _paths(c) and len(c[path]) == RUNS for c in clients), timeout=90
        )
        runs = list(clients[0][path])
        wait_until(lambda: all("primary" in c[path][u] for c in clients for u in runs))

        seen: dict[tuple[int, str], list] = {}
        for i, client in enumerate(clients):
            for uid in runs:
                rows = seen[i, uid] = []
                subs.append(client[path][uid]["primary"]["data"].subscribe(rows.append, start=1))
        gate.set()
        wait_until(lambda: all(any(u.type == "rows-appended" for u in r) for r in seen.values()))

        os.kill(workers[0].proc.pid, signal.SIGKILL)  # its partitions move to the other worker
        workers[0].proc.wait(timeout=10)
        servers[1].send_signal(signal.SIGKILL)  # its subscribers reconnect to the new one
        servers[1].wait(timeout=10)
        servers[1] = start_server(postgresql_uri, ports[1])
        procs.append(servers[1])

        for thread in threads:
            thread.join(timeout=180)
            assert not thread.is_alive(), "a RunEngine did not finish its run"
        assert sorted(uids) == sorted(runs)
        wait_until(
            lambda: all(r and r[-1].type == "run-stopped" for r in seen.values()), timeout=120
        )
        workers[1].wait_for(  # the survivor took the killed worker's partitions over
            "partitions assigned: " + ", ".join(f"{topic}[{p}]" for p in range(4)), timeout=90
        )
        for uid in runs:
            run = clients[0][path][uid]
            assert run.metadata["stop"]["exit_status"] == "success"
            assert run.metadata["stop"]["num_events"] == {"primary": EVENTS}
            assert len(run["primary"]["data"].read()) == EVENTS
        for (_, uid), rows in seen.items():
            assert [u.sequence for u in rows] == list(range(1, len(rows) + 1)), uid
            seq_nums = [s for u in rows if u.type == "rows-appended" for s in u.data["seq_num"]]
            assert seq_nums == list(range(1, EVENTS + 1)), uid  # every event once, in order
        assert any(sub.reconnects >= 1 for sub in subs[RUNS:])  # server 1's subscribers
        assert all(sub.reconnects == 0 for sub in subs[:RUNS])
    finally:
        for sub in subs:
            sub.close()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 1))
            except Exception:
                proc.kill()
        for engine, loop in engines:
            if engine.state not in ("idle", "panicked"):
                engine.halt()
            loop.call_soon_threadsafe(loop.stop)
            engine._th.join()
            loop.close()
