"""bluebroker's side of the benchmarks, run with the project's own venv.

Same workload and same metrics as ``peer_tiled.py``, printed as one JSON object on stdout:
ingest through the one writer, the talk's chain from ``from_uri`` to ``[:5]``, a 1,000-row
stream read into pandas (and into xarray), and, in a catalog of ``--big`` runs, a search by
scan_id and a listing of the newest 100 runs. The server is a real uvicorn server on a free
loopback port, in its own process, over a SQLite catalog in a temp dir.
"""

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
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402  (benchmarks/workload.py: event_model + numpy only)


def log(*args: object) -> None:
    print("[bluebroker]", *args, file=sys.stderr, flush=True)


def bench(fn: Callable[[], object], reps: int, warmup: int = 1) -> tuple[list[float], object]:
    """Milliseconds per call for ``reps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        out = fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return samples, out


def ingest(writer, runs: int, events: int) -> dict:
    """Write the workload run by run (one transaction per run, as TiledWriter appends a run's
    rows in one request); documents are composed before the clock starts."""
    all_runs = [list(docs) for docs in workload.workload(runs, events)]
    t = time.perf_counter()
    for docs in all_runs:
        writer.write_many(docs)
    total = time.perf_counter() - t
    return {"events_per_s": runs * events / total, "total_s": total}


def fill_big_catalog(writer, n: int) -> float:
    """``n`` runs of start + stop only (scan_id 1..n), for search and listing at scale."""
    from event_model import compose_run

    t = time.perf_counter()
    batch: list = []
    for i in range(n):  # composed without event-model's own (slow) checks; the writer checks
        bundle = compose_run(
            metadata={"scan_id": i + 1, "plan_name": "count"},
            time=1_600_000_000.0 + i,
            validate=False,
        )
        stop = bundle.compose_stop(time=1_600_000_001.0 + i, validate=False)
        batch += [("start", bundle.start_doc), ("stop", stop)]
        if len(batch) >= 5000:
            writer.write_many(batch)
            batch = []
            log(f"big catalog: {i + 1:,} runs")
    if batch:
        writer.write_many(batch)
    return time.perf_counter() - t


@contextlib.contextmanager
def served(uri: str) -> Iterator[str]:
    """``bluebroker serve`` in its own process (as the peer's server is), on a free port."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("bluebroker")
    proc = subprocess.Popen(
        [str(exe), "serve", "--catalog", uri, "--port", str(port)], stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bluebroker serve did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=workload.DEFAULT_RUNS)
    ap.add_argument("--events", type=int, default=workload.DEFAULT_EVENTS)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--big", type=int, default=100_000, help="runs in the large catalog (0: skip)")
    args = ap.parse_args(argv)

    import numpy as np

    from bluebroker.catalog import open_catalog
    from bluebroker.client import from_uri
    from bluebroker.ingest import CatalogWriter
    from bluebroker.queries import ScanID

    with tempfile.TemporaryDirectory(prefix="bluebroker-bench-") as tmp:
        catalog = open_catalog(f"sqlite:///{tmp}/catalog.db")
        writer = CatalogWriter(catalog, "bench/raw")
        log(f"ingesting {args.runs} runs x {args.events} events ...")
        ing = ingest(writer, args.runs, args.events)
        log(f"ingest: {ing['events_per_s']:,.0f} events/s")
        big_s = fill_big_catalog(CatalogWriter(catalog, "bench/big"), args.big) if args.big else 0
        expected = workload.run_values(args.runs - 1, args.events)
        catalog.close()  # the server reads the file on its own

        with served(f"sqlite:///{tmp}/catalog.db") as url:

            def chain():
                c = from_uri(url)
                return c["bench"]["raw"].values().last()["primary"]["data"]["f0"][:5]

            chain_ms, first5 = bench(chain, args.reps)
            np.testing.assert_allclose(first5, expected[:5, 0])
            log(f"chain: median {statistics.median(chain_ms):.1f} ms")

            run = from_uri(url)["bench/raw"][-1]
            read_ms, df = bench(lambda: run["primary"]["data"].read(), args.reps)
            np.testing.assert_allclose(df["f0"].to_numpy(), expected[:, 0])
            log(f"read_1000 (pandas): median {statistics.median(read_ms):.1f} ms")
            xr_ms, ds = bench(lambda: run["primary"].read(), args.reps)
            np.testing.assert_allclose(ds["f0"].values, expected[:, 0])

            extra: dict = {}
            if args.big:
                big = from_uri(url)["bench/big"]
                target = args.big // 2

                def by_scan_id():
                    return list(big.search(ScanID(target)))

                search_ms, found = bench(by_scan_id, args.reps)
                assert len(found) == 1
                newest_ms, newest = bench(lambda: big.values().tail(100), args.reps)
                assert newest[-1].start["scan_id"] == args.big and len(newest) == 100
                log(
                    f"{args.big:,} runs: scan_id search {statistics.median(search_ms):.1f} ms, "
                    f"newest 100 {statistics.median(newest_ms):.1f} ms"
                )
                extra = {
                    "big_runs": args.big,
                    "big_fill_s": round(big_s, 1),
                    "search_scan_id_ms": search_ms,
                    "newest_100_ms": newest_ms,
                }

    result = {
        "system": "bluebroker (SQLite catalog, `bluebroker serve`: one uvicorn process)",
        "ingest_events_per_s": round(ing["events_per_s"], 1),
        "chain_ms": chain_ms,
        "read_1000_ms": read_ms,
        "extra": {
            "read_1000_xarray_ms": xr_ms,
            "ingest_total_s": round(ing["total_s"], 2),
            **extra,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
