"""Peer benchmark: Tiled 0.2.x + bluesky-tiled-plugins' TiledWriter.

Run with the PEER venv's python (see benchmarks/peer_env.py)::

    .bench/peer-venv/bin/python benchmarks/peer_tiled.py --runs 100 --events 1000

What it does:

1. starts ``tiled serve catalog`` as a subprocess on a free loopback port,
   with a fresh SQLite catalog, a writable file directory and a writable
   tabular (DuckDB by default, as ``tiled serve catalog --temp`` uses) store,
   all inside a private temp dir, and a single-user API key;
2. ingests the shared workload (benchmarks/workload.py) through
   ``bluesky_tiled_plugins.TiledWriter`` and reports events/s;
3. times, with the Tiled Python client:
   * ``chain``: ``from_uri(...)`` -> newest run (``.values().last()``) ->
     ``['primary']['f0'][:5]`` (5 values of f0);
   * ``read_1000``: ``.read()`` of the newest run's 1000-row events table
     (``run['primary'].base['internal']``) into a pandas DataFrame;
4. prints ONE JSON object on stdout; everything else goes to stderr;
5. stops the server and removes the temp dir.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402  (benchmarks/workload.py: event_model + numpy only)


def log(*args: object) -> None:
    print("[peer-tiled]", *args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TiledServer:
    """``tiled serve catalog`` in a subprocess, with everything in a temp dir."""

    def __init__(self, tabular: str = "duckdb", keep: bool = False):
        self.tmp = Path(tempfile.mkdtemp(prefix="peer-tiled-"))
        self.keep = keep
        self.port = free_port()
        self.api_key = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.catalog = self.tmp / "catalog.db"
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir()
        if tabular == "duckdb":
            self.tabular_uri = f"duckdb:///{self.tmp / 'tabular.duckdb'}"
        elif tabular == "sqlite":
            self.tabular_uri = f"sqlite:///{self.tmp / 'tabular.sqlite'}"
        else:
            raise ValueError(f"unknown tabular storage {tabular!r}")
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "tiled", "serve", "catalog", str(self.catalog),
            "--init",
            "--write", str(self.data_dir),
            "--write", self.tabular_uri,
            "--api-key", self.api_key,
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip

    def start(self, timeout: float = 120.0) -> None:
        import httpx

        cmd = self.command()
        log("starting:", " ".join(c if c != self.api_key else "<key>" for c in cmd))
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 (lives as long as the child)
        env = dict(os.environ)
        # Keep the child's own Tiled settings from leaking in.
        for var in list(env):
            if var.startswith("TILED_"):
                env.pop(var)
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tiled server exited early:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/api/v1/", timeout=2.0)
                if r.status_code == 200:
                    log(f"server up at {self.url} (pid {self.proc.pid})")
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"tiled server not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """User+system CPU seconds used so far by the server process (Linux /proc)."""
        if self.proc is None:
            return float("nan")
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def disk_usage(self) -> dict[str, int]:
        usage: dict[str, int] = {}
        for p in self.tmp.iterdir():
            if p.is_file():
                usage[p.name] = p.stat().st_size
            else:
                usage[p.name] = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return usage

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # Signal only our own child (it leads its own session/process group).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
            log("server stopped")
        if getattr(self, "_log_file", None):
            self._log_file.close()
        if self.keep:
            log(f"kept temp dir {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> TiledServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            log("server log tail:\n" + self.log_tail())
        self.stop()


def ingest(client, runs: int, events: int, batch_size: int | None, server: TiledServer) -> dict:
    from bluesky_tiled_plugins import TiledWriter

    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    writer = TiledWriter(client, **kwargs)
    # Compose the documents up front so that only TiledWriter + server work is timed.
    t = time.perf_counter()
    docs_per_run = [list(run_docs) for run_docs in workload.workload(runs, events)]
    compose_s = time.perf_counter() - t
    log(f"composed {runs} runs x {events} events in {compose_s:.2f}s (not timed)")

    per_run_s: list[float] = []
    cpu0, srv0 = time.process_time(), server.cpu_seconds()
    t_all = time.perf_counter()
    for i, docs in enumerate(docs_per_run):
        t = time.perf_counter()
        for name, doc in docs:
            writer(name, doc)
        per_run_s.append(time.perf_counter() - t)
        if (i + 1) % max(1, runs // 10) == 0 or i + 1 == runs:
            done = time.perf_counter() - t_all
            log(f"ingested {i + 1}/{runs} runs, {(i + 1) * events / done:,.0f} events/s so far")
    total_s = time.perf_counter() - t_all
    cpu_s, srv_s = time.process_time() - cpu0, server.cpu_seconds() - srv0
    log(f"ingest CPU: client {cpu_s:.1f}s, server {srv_s:.1f}s, wall {total_s:.1f}s")
    return {
        "client_cpu_s": cpu_s,
        "server_cpu_s": srv_s,
        "total_s": total_s,
        "events_per_s": runs * events / total_s,
        "per_run_s_median": statistics.median(per_run_s),
        "compose_s": compose_s,
    }


def describe_layout(client, uid: str) -> dict:
    """Record the tree TiledWriter produced for one run (for the report)."""
    run = client[uid]
    stream = run["primary"]
    base = stream.base
    layout = {
        "root_children": len(client),
        "run_class": type(run).__name__,
        "run_specs": [s.name + (f"@{s.version}" if s.version else "") for s in run.specs],
        "run_keys": list(run.base.keys()) if hasattr(run, "base") else list(run),
        "stream_class": type(stream).__name__,
        "stream_specs": [s.name + (f"@{s.version}" if s.version else "") for s in stream.specs],
        "stream_flat_keys": list(stream),
        "stream_base_keys": {k: type(v).__name__ for k, v in base.items()},
    }
    table = base["internal"]
    layout["internal_columns"] = list(table.columns)
    layout["internal_structure"] = {
        "npartitions": table.structure().npartitions,
    }
    layout["f0_node"] = type(stream["f0"]).__name__
    layout["f0_path"] = "/".join(stream["f0"].item["id"].split("/")[-2:])
    return layout


def time_chain(url: str, api_key: str, uid: str | None) -> tuple[float, object]:
    """from_uri -> newest run (or uid) -> primary -> f0 -> first 5 values."""
    from tiled.client import from_uri

    t = time.perf_counter()
    c = from_uri(url, api_key=api_key)
    run = c[uid] if uid is not None else c.values().last()
    values = run["primary"]["f0"][:5]
    dt = (time.perf_counter() - t) * 1000.0
    c.context.close()
    return dt, values


def bench(fn, reps: int, warmup: int = 1) -> tuple[list[float], object]:
    out = None
    for _ in range(warmup):
        _, out = fn()
    samples = []
    for _ in range(reps):
        dt, out = fn()
        samples.append(round(dt, 3))
    return samples, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Tiled + TiledWriter peer benchmark")
    ap.add_argument("--runs", type=int, default=workload.DEFAULT_RUNS)
    ap.add_argument("--events", type=int, default=workload.DEFAULT_EVENTS)
    ap.add_argument("--reps", type=int, default=20, help="timed repetitions per read metric")
    ap.add_argument(
        "--tabular",
        choices=["duckdb", "sqlite"],
        default="duckdb",
        help="tabular storage for event tables (duckdb is what `tiled serve catalog --temp` uses)",
    )
    ap.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="TiledWriter batch_size (default: the plugin's own, 10000 rows)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    args = ap.parse_args(argv)

    import numpy as np
    from tiled.client import from_uri

    versions = {
        p: importlib.metadata.version(p)
        for p in ("tiled", "bluesky-tiled-plugins", "event-model", "numpy", "pandas", "httpx")
    }
    log("versions:", versions)

    with TiledServer(tabular=args.tabular, keep=args.keep) as server:
        client = from_uri(server.url, api_key=server.api_key)

        log(f"ingesting {args.runs} runs x {args.events} events via TiledWriter ...")
        ing = ingest(client, args.runs, args.events, args.batch_size, server)
        log(f"ingest: {ing['events_per_s']:,.0f} events/s ({ing['total_s']:.1f}s)")

        newest = args.runs - 1
        newest_uid = workload.run_uid(newest)
        expected = workload.run_values(newest, args.events)
        layout = describe_layout(client, newest_uid)
        log("layout:", json.dumps(layout))
        if layout["root_children"] != args.runs:
            raise RuntimeError(f"expected {args.runs} runs, server has {layout['root_children']}")

        # (a) chain: from_uri -> .values().last() -> primary -> f0 -> 5 values
        chain_ms, got = bench(lambda: time_chain(server.url, server.api_key, None), args.reps)
        np.testing.assert_allclose(np.asarray(got), expected[:5, 0])
        log(f"chain (values().last()): median {statistics.median(chain_ms):.1f} ms")

        chain_uid_ms, got = bench(
            lambda: time_chain(server.url, server.api_key, newest_uid), args.reps
        )
        np.testing.assert_allclose(np.asarray(got), expected[:5, 0])
        log(f"chain (by uid): median {statistics.median(chain_uid_ms):.1f} ms")

        # (b) read_1000: the newest run's events table -> pandas.DataFrame
        run = client[newest_uid]
        table = run["primary"].base["internal"]

        def read_table():
            t = time.perf_counter()
            df = table.read()
            return (time.perf_counter() - t) * 1000.0, df

        read_ms, df = bench(read_table, args.reps)
        if len(df) != args.events:
            raise RuntimeError(f"read {len(df)} rows, expected {args.events}")
        np.testing.assert_allclose(df["f0"].to_numpy(), expected[:, 0])
        log(
            f"read_1000 (table -> pandas): median {statistics.median(read_ms):.1f} ms; "
            f"columns {list(df.columns)}"
        )

        # Extra: the stream's own .read() (composite -> xarray.Dataset)
        stream = run["primary"]

        def read_stream():
            t = time.perf_counter()
            ds = stream.read()
            return (time.perf_counter() - t) * 1000.0, ds

        read_xr_ms, ds = bench(read_stream, args.reps)
        np.testing.assert_allclose(ds["f0"].values, expected[:, 0])
        log(f"read_1000 (stream.read() -> xarray): median {statistics.median(read_xr_ms):.1f} ms")

        client.context.close()
        disk = server.disk_usage()
        log("disk usage (bytes):", disk)

    peer = f"tiled {versions['tiled']} + bluesky-tiled-plugins {versions['bluesky-tiled-plugins']}"
    result = {
        "peer": peer,
        "ingest_events_per_s": round(ing["events_per_s"], 1),
        "chain_ms": chain_ms,
        "read_1000_ms": read_ms,
        "notes": " ".join(
            [
                f"workload {args.runs} runs x {args.events} events (5 float fields, single",
                "event docs, composed up front and not timed); server: `tiled serve catalog`",
                "subprocess on 127.0.0.1 with a fresh SQLite catalog, a writable file dir and",
                f"{args.tabular} tabular storage in a temp dir, single-user API key;",
                f"TiledWriter batch_size={args.batch_size or 'default (10000)'}, so each run's",
                "events are appended in one request at its stop doc;",
                f"ingest {ing['total_s']:.1f}s wall, client CPU {ing['client_cpu_s']:.1f}s,",
                f"server CPU {ing['server_cpu_s']:.1f}s.",
                "Layout: /<start uid> (BlueskyRun 3.0) /primary (composite container,",
                "BlueskyEventStream 3.0) /internal (appendable table: seq_num, time, f0..f4,",
                "ts_f0..ts_f4); run['primary']['f0'] is the column internal/f0.",
                "chain_ms: from_uri -> .values().last() -> ['primary']['f0'][:5];",
                "read_1000_ms: run['primary'].base['internal'].read() -> pandas.DataFrame.",
                f"Client and server share 2 cores; one untimed warm-up, then {args.reps} reps.",
            ]
        ),
        "extra": {
            "versions": versions,
            "chain_by_uid_ms": chain_uid_ms,
            "read_1000_xarray_ms": read_xr_ms,
            "ingest_total_s": round(ing["total_s"], 3),
            "ingest_per_run_median_s": round(ing["per_run_s_median"], 4),
            "ingest_client_cpu_s": round(ing["client_cpu_s"], 2),
            "ingest_server_cpu_s": round(ing["server_cpu_s"], 2),
            "medians_ms": {
                "chain": statistics.median(chain_ms),
                "chain_by_uid": statistics.median(chain_uid_ms),
                "read_1000": statistics.median(read_ms),
                "read_1000_xarray": statistics.median(read_xr_ms),
            },
            "layout": layout,
            "disk_bytes": disk,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
