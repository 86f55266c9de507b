"""Soak: real traffic and abuse at the same time, for minutes; did anything get lost?

Not part of the test suite (it runs for ``--duration`` seconds, ten minutes by default).
bluebroker's production shape on one machine: a Tansu Kafka broker, one ``bluebroker ingest
kafka`` worker writing to a fresh PostgreSQL schema, and one ``bluebroker serve`` process.
Against it, all at once:

- ``--publishers`` processes (3) each publish one long run through Kafka, ``--rate`` events/s;
- ``--subscribers`` live subscriptions (50), spread over those runs' ``primary/data`` tables;
- abusive clients, in threads: bodies far over the size limit, websocket subscribers that
  never read, HTTP downloads read a few bytes a second, and a rotation of bad queries
  (catastrophic regexes, NUL bytes, deep JSON, huge integers, nonsense slices);
- a prober asking ``/healthz`` twice a second.

It prints one JSON object: events published, stored and received per subscriber (lost and
duplicated must be 0), the server errors the abusers provoked (must be 0), the p50/p99 of
``/healthz``, and the server's resident memory at start and end. Exit status 1 when any
event was lost or duplicated or any 5xx answered. Every request goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from kafka_ingest import start_broker  # noqa: E402
from live_common import (  # noqa: E402
    AUTH,
    BENCH_KEY,
    CONSUMER,
    free_port,
    percentiles,
    scratch_schema,
    stop_processes,
)

PG = os.environ.get("BLUEBROKER_TEST_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/test")
PATH = "soak/raw"  # what the topic "soak.bluesky.runengine.documents" maps to


def log(*args: object) -> None:
    print("[soak]", *args, file=sys.stderr, flush=True)


# -- the publishers (each a process of its own, as a RunEngine is) ----------------------------


def publish(servers: str, topic: str, duration: float, rate: float) -> int:
    """One run of events at ``rate`` for ``duration`` s; prints the uid first, the count last."""
    from event_model import compose_run

    from bluebroker.ingest.kafka import Publisher

    pub = Publisher(topic, servers)
    run = compose_run(metadata={"plan_name": "soak", "scan_id": 1})
    keys = {f: {"dtype": "number", "shape": [], "source": "sim"} for f in ("x", "y")}
    desc = run.compose_descriptor(data_keys=keys, name="primary")
    pub("start", run.start_doc)
    pub("descriptor", desc.descriptor_doc)
    pub.flush()
    print(json.dumps({"uid": run.start_doc["uid"]}), flush=True)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < duration:
        n += 1
        now = time.time()
        data = {"x": float(n), "y": now}
        pub("event", desc.compose_event(data=data, timestamps=dict.fromkeys(keys, now), seq_num=n))
        delay = t0 + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    pub("stop", run.compose_stop())
    pub.flush()
    print(json.dumps({"events": n}), flush=True)
    return 0


# -- the abusers ---------------------------------------------------------------------------------


class Abuse:
    """Threads that misbehave until ``stop`` is set; counts what the server answered."""

    def __init__(self, base: str, stop: threading.Event) -> None:
        self.base, self.stop = base, stop
        self.statuses: dict[str, int] = {}
        self.server_errors: list[str] = []
        self._lock = threading.Lock()

    def note(self, what: str, status: int) -> None:
        with self._lock:
            key = f"{what}:{status}"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if status >= 500:
                self.server_errors.append(key)

    def huge_bodies(self) -> None:
        import httpx

        def body():  # 256 MiB offered in 1 MiB pieces; the server should stop us early
            chunk = b"[" * 2**20
            for _ in range(256):
                if self.stop.is_set():
                    return
                yield chunk

        while not self.stop.is_set():
            try:
                r = httpx.post(
                    f"{self.base}/api/v1/documents/soak/abuse",
                    content=body(),
                    headers={"Content-Type": "application/json", **AUTH},
                    timeout=30,
                )
                self.note("huge-body", r.status_code)
            except httpx.HTTPError:
                self.note("huge-body", 0)  # the server hung up on us: fine
            self.stop.wait(1.0)

    def bad_queries(self) -> None:
        import httpx

        s = f"{self.base}/api/v1/search/{PATH}"
        asks = [
            (
                s,
                {
                    "filter[regex][condition][key]": "plan_name",
                    "filter[regex][condition][pattern]": "^(a|a)*$",
                },
            ),
            (s, {"filter[eq][condition][key]": "a\x00b", "filter[eq][condition][value]": "1"}),
            (s, {"sort": "\x00"}),
            (
                s,
                {"filter[eq][condition][key]": "scan_id", "filter[eq][condition][value]": "9" * 40},
            ),
            (
                s,
                {
                    "filter[eq][condition][key]": "x",
                    "filter[eq][condition][value]": "[" * 5000 + "]" * 5000,
                },
            ),
            (s, {"page[offset]": str(2**70)}),
            (f"{self.base}/api/v1/metadata/" + "a/" * 300, {}),
            (f"{self.base}/api/v1/array/full/{PATH}/nope", {"slice": "::0,::-1," * 50}),
        ]
        with httpx.Client(timeout=60, headers=AUTH) as client:  # signed in: the deeper code
            while not self.stop.is_set():
                for url, params in asks:
                    try:
                        self.note("bad-query", client.get(url, params=params).status_code)
                    except httpx.HTTPError:
                        self.note("bad-query", 0)
                self.stop.wait(0.2)

    def silent_subscribers(self) -> None:
        from websockets.sync.client import connect

        url = self.base.replace("http", "ws", 1) + f"/api/v1/stream/single/{PATH}"
        url += f"?api_key={BENCH_KEY}"
        with contextlib.ExitStack() as socks:
            for _ in range(20):  # twenty that never read what they are sent
                if self.stop.is_set():
                    break
                with contextlib.suppress(Exception):
                    socks.enter_context(connect(url, open_timeout=10))
                self.stop.wait(2.0)
            self.stop.wait()

    def slow_readers(self, uids: list[str]) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        while not self.stop.is_set():
            for uid in uids:
                with contextlib.suppress(OSError), socket.create_connection((host, int(port))) as s:
                    s.sendall(
                        f"GET /api/v1/documents/{PATH}/{uid} HTTP/1.1\r\nHost: x\r\n"
                        f"Authorization: Bearer {BENCH_KEY}\r\n"
                        "Accept: application/x-ndjson\r\n\r\n".encode()
                    )
                    s.settimeout(5)
                    for _ in range(10):  # ten bytes a second for ten seconds
                        if self.stop.is_set() or not s.recv(10):
                            break
                        self.stop.wait(1.0)


# -- the run ----------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def soak(servers: str, args: argparse.Namespace) -> dict:
    from bluebroker.catalog import open_catalog
    from bluebroker.client import from_uri

    with scratch_schema(PG, "soak") as uri:
        exe = str(Path(sys.executable).with_name("bluebroker"))
        topic = "soak.bluesky.runengine.documents"
        procs: list[subprocess.Popen] = []
        subs = []
        stop = threading.Event()
        try:
            open_catalog(uri, create=True).close()
            from kafka.admin import KafkaAdminClient, NewTopic

            admin = KafkaAdminClient(bootstrap_servers=servers)
            admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
            admin.close()
            worker = [exe, "ingest", "kafka", "--bootstrap-servers", servers, "--topic", topic]
            worker += ["--catalog", uri, "--group-id", "soak"]
            # Tansu answers a fetch with no records when reading takes longer than the wait:
            # 2 ms (the latency benchmarks' setting) starves the worker under this load
            settings = {**CONSUMER, "fetch_max_wait_ms": 100}
            for key, value in {**settings, **dict(c.split("=", 1) for c in args.consumer)}.items():
                worker += ["--consumer-config", f"{key}={value}"]
            procs.append(subprocess.Popen(worker, stdout=subprocess.DEVNULL))
            port = free_port()
            server = subprocess.Popen(
                [exe, "serve", "--catalog", uri, "--port", str(port)],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(server)
            server.stdout.readline()  # "serving ..." once the port is about to be bound
            base = f"http://127.0.0.1:{port}"
            publishers = [
                subprocess.Popen(
                    [sys.executable, __file__, "--publish", servers, topic],
                    stdout=subprocess.PIPE,
                    text=True,
                    env={
                        **os.environ,
                        "SOAK_DURATION": str(args.duration),
                        "SOAK_RATE": str(args.rate),
                    },
                )
                for _ in range(args.publishers)
            ]
            procs += publishers
            uids = [json.loads(p.stdout.readline())["uid"] for p in publishers]
            deadline = time.monotonic() + 120
            while True:  # until the server answers and every run is on it
                with contextlib.suppress(Exception):
                    client = from_uri(base)
                    if all(u in client[PATH] for u in uids):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the runs never appeared on the server")
                time.sleep(0.2)
            memory_start = rss_mb(server.pid)
            seen: list[dict[int, int]] = [{} for _ in range(args.subscribers)]
            without_data = [0]

            def counter(i: int):
                def callback(update) -> None:
                    if update.type != "rows-appended":
                        return
                    data = update.data
                    if data is not None:
                        seqs = data["seq_num"].tolist()
                    else:  # sent without its rows (too large, or unreadable now): the range
                        first, last = update["seq_nums"]
                        seqs = range(first, last + 1)
                        without_data[0] += 1
                    for seq in seqs:
                        seen[i][seq] = seen[i].get(seq, 0) + 1

                return callback

            for i in range(args.subscribers):
                table = client[PATH][uids[i % len(uids)]]["primary"]["data"]
                subs.append(table.subscribe(counter(i), start=1))
            log(f"{len(uids)} runs, {len(subs)} subscribers; abusing for {args.duration} s")
            abuse = Abuse(base, stop)
            threads = [
                threading.Thread(target=t, daemon=True)
                for t in (abuse.huge_bodies, abuse.bad_queries, abuse.silent_subscribers)
            ]
            threads.append(threading.Thread(target=abuse.slow_readers, args=(uids,), daemon=True))
            for t in threads:
                t.start()
            health: list[float] = []
            import httpx

            with httpx.Client(timeout=30) as probe:
                while any(p.poll() is None for p in publishers):
                    t0 = time.perf_counter()
                    try:
                        ok = probe.get(f"{base}/healthz").status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    health.append((time.perf_counter() - t0) * 1000 if ok else float("inf"))
                    time.sleep(0.5)
            published = [json.loads(p.stdout.readline())["events"] for p in publishers]
            stop.set()
            for t in threads:
                t.join(timeout=30)
            # Wait until every subscriber has its run's last event, or nothing moves for 30 s.
            want = [published[i % len(uids)] for i in range(len(subs))]
            last, quiet = -1, time.monotonic()
            while any(len(s) < w for s, w in zip(seen, want, strict=True)):
                total = sum(map(len, seen))
                if total != last:
                    last, quiet = total, time.monotonic()
                elif time.monotonic() - quiet > 30:
                    break
                time.sleep(0.2)
            stored = [len(client[PATH][u]["primary"]["data"].read()) for u in uids]
            lost = sum(max(0, w - len(s)) for s, w in zip(seen, want, strict=True))
            duplicated = sum(c - 1 for s in seen for c in s.values() if c > 1)
            return {
                "duration_s": args.duration,
                "published": published,
                "stored": stored,
                "subscribers": len(subs),
                "appends_without_data": without_data[0],
                "lost_in_storage": sum(p - s for p, s in zip(published, stored, strict=True)),
                "lost_by_subscribers": lost,
                "duplicated": duplicated,
                "abuse": abuse.statuses,
                "server_errors": len(abuse.server_errors),
                "healthz": {
                    **percentiles([h for h in health if h != float("inf")]),
                    "failed": sum(h == float("inf") for h in health),
                },
                "server_rss_mb": {"start": memory_start, "end": rss_mb(server.pid)},
            }
        finally:
            stop.set()
            for sub in subs:
                sub.close()
            stop_processes(procs)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--publish"]:
        duration, rate = float(os.environ["SOAK_DURATION"]), float(os.environ["SOAK_RATE"])
        return publish(argv[1], argv[2], duration, rate)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (600)")
    ap.add_argument("--publishers", type=int, default=3, help="publishing processes (3)")
    ap.add_argument("--subscribers", type=int, default=50, help="live subscriptions (50)")
    ap.add_argument("--rate", type=float, default=20.0, help="events/s per publisher (20)")
    ap.add_argument(
        "--consumer",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a kafka-python setting for the ingest worker (repeatable)",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bluebroker-soak-") as tmp:
        broker, servers = start_broker(tmp)
        try:
            result = soak(servers, args)
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    print(json.dumps(result))
    bad = result["lost_in_storage"] or result["lost_by_subscribers"] or result["duplicated"]
    return 1 if bad or result["server_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
