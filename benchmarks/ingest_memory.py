"""Resident memory of one ingest worker over a long run: must stay flat, whatever the run's
length (a worker that kept per-run state per event would grow until the beamline's longest
fly scan killed it).

One run of ``--events`` events (1,000,000 by default; 5 float fields, the shared workload) is
published event by event with bluebroker's Publisher to a real Kafka-protocol broker (Tansu);
a ``bluebroker ingest kafka`` process writes it into a SQLite or PostgreSQL catalog. The
worker's RSS (``/proc/<pid>/status``: anonymous, file-backed and shared apart), the rows
written so far and, on SQLite, the sizes of the catalog's -wal and -shm files are sampled every
``--every`` seconds. Prints one JSON object on stdout: the samples, RSS at 10 % of the run,
at the end and at its peak, the growth between 10 % and the end, and a verdict.

"Flat", as this benchmark decides it (single samples are noisy: a batch in hand, a fetch
response, a merge of stored chunks come and go), means both of:

- no trend: the line of RSS against events written, fitted over the last 80 % of the run,
  rises less than ``FLAT_MB`` from its start to its end (a Theil-Sen fit, the median of the
  slopes between pairs of samples, so that one spike does not tilt it);
- no step: the median RSS of the last 10 % of the run is less than ``FLAT_MB`` above the
  median of the 10-20 % window.

The peak is reported beside it (with where it happened and how far above the median), since
a transient spike is what an operator sizes the container for, but it does not decide
"flat".
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
FLAT_MB = 5.0


def log(*args: object) -> None:
    print("[memory]", *args, file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def memory_parts(pid: int, catalog_file: Path | None) -> dict[str, float]:
    """Where the resident memory is (MB): anonymous (heaps, native allocations), file-backed
    (mapped code and files), shared (e.g. SQLite's -shm wal-index); the SQLite catalog's -wal
    and -shm sizes and how many descriptors the worker holds on the catalog file (one per
    open SQLite connection). The sampler adds ``lag``: events published but not yet written."""
    status = {
        k: int(v.split()[0]) / 1024
        for k, v in (
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        if k in ("RssAnon", "RssFile", "RssShmem")
    }
    parts = {"anon": status["RssAnon"], "file": status["RssFile"], "shmem": status["RssShmem"]}
    if catalog_file is not None:
        for suffix in ("wal", "shm"):
            f = catalog_file.with_name(f"{catalog_file.name}-{suffix}")
            parts[suffix] = f.stat().st_size / 2**20 if f.exists() else 0.0
        fds = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                fds += Path(fd.readlink()) == catalog_file
        parts["connections"] = fds
    return parts


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


def verdict(samples: list[tuple[float, float, int]], events: int) -> dict:
    """Trend, step and peak of RSS samples ``(seconds, MB, events written)`` (see above)."""
    import numpy as np

    def window(lo: float, hi: float) -> np.ndarray:
        return np.array([s[1] for s in samples if lo * events <= s[2] <= hi * events])

    late = [s for s in samples if s[2] >= 0.2 * events]
    rows = np.array([s[2] for s in late], dtype=float)
    rss = np.array([s[1] for s in late])
    i, j = np.triu_indices(len(rows), 1)
    apart = rows[j] != rows[i]
    slopes = (rss[j] - rss[i])[apart] / (rows[j] - rows[i])[apart]
    slope = float(np.median(slopes)) if len(slopes) else 0.0
    trend = slope * float(rows.max() - rows.min()) if len(rows) else 0.0
    early, last = window(0.1, 0.2), window(0.9, 1.0)
    step = float(np.median(last) - np.median(early)) if len(early) and len(last) else None
    median = float(np.median([s[1] for s in samples if s[2] >= 0.1 * events]))
    peak = max(samples, key=lambda s: s[1])
    flat = bool(abs(trend) < FLAT_MB and step is not None and step < FLAT_MB)
    return {
        "trend_last80pct_mb": trend,
        "trend_mb_per_million_events": slope * 1e6,
        "step_10_20pct_to_last10pct_mb": step,
        "rss_median_mb": median,
        "peak_at_events": peak[2],
        "peak_above_median_mb": peak[1] - median,
        "flat": flat,
        "flat_means": f"trend over the last 80 % and median step both under {FLAT_MB:g} MB",
    }


def split(
    samples: list[tuple[float, float, int]], parts: list[dict[str, float]], events: int
) -> dict[str, tuple[float, float]]:
    """Each part's median in the 10-20 % window and in the last 10 % (the step's windows)."""
    import numpy as np

    def median(key: str, lo: float, hi: float) -> float:
        got = [
            p[key]
            for s, p in zip(samples, parts, strict=True)
            if lo * events <= s[2] <= hi * events
        ]
        return float(np.median(got)) if got else float("nan")

    return {k: (median(k, 0.1, 0.2), median(k, 0.9, 1.0)) for k in parts[0]} if parts else {}


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
            from bluebroker.catalog import open_catalog

            open_catalog(uri, create=True).close()  # the worker opens, never creates
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

            published = [0]

            def publish() -> None:
                for name, doc in workload.run_documents(0, args.events):
                    publisher(name, doc)
                    published[0] += name == "event"
                publisher.flush()

            sender = threading.Thread(target=publish, daemon=True)
            started = time.monotonic()
            sender.start()
            samples: list[tuple[float, float, int]] = []
            parts: list[dict[str, float]] = []
            catalog_file = None if args.postgresql else Path(tmp) / "catalog.db"
            while True:
                rows = rows_written(uri, path, uid)
                samples.append((time.monotonic() - started, rss_mb(worker.pid), rows))
                parts.append({**memory_parts(worker.pid, catalog_file), "lag": published[0] - rows})
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
        **verdict(samples, args.events),
        "parts": split(samples, parts, args.events),
        "samples": samples,
        "samples_parts": parts,
    }
    log(
        "median at 10-20 % -> last 10 %: "
        + ", ".join(f"{k} {a:.1f} -> {b:.1f}" for k, (a, b) in result["parts"].items())
    )
    log(
        f"RSS median {result['rss_median_mb']:.0f} MB, trend {result['trend_last80pct_mb']:+.1f}"
        f" MB over the last 80 %, step {result['step_10_20pct_to_last10pct_mb']:+.1f} MB, peak "
        f"{result['rss_peak_mb']:.0f} MB at {result['peak_at_events']:,} events: "
        + ("flat" if result["flat"] else "NOT flat")
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
