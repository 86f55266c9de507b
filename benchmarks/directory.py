"""Serving a folder of files: bluebroker and ``tiled serve directory`` side by side.

The same generated tree (small files of several kinds, plus a few large HDF5 files) is
served by ``bluebroker serve directory`` and by ``tiled serve directory`` (Tiled 0.2, in its
own virtualenv: ``--tiled-python``), each as the real command on a loopback port. Measured:

* **registration**: from starting the command until the server answers for the last file
  of the walk (both index the whole tree before or while they serve: the clock stops only
  when the last file is reachable); for bluebroker also a restart on the same index;
* **search**: ``/api/v1/search`` of one folder of small files for the one file whose HDF5
  attribute ``sample`` has a value (p50 and p99 of sequential requests);
* **slice**: a 1,000 x 1,000 slice of a large chunked HDF5 dataset as raw bytes over HTTP,
  against h5py reading the same slice in this process (the limit), timed in turns with
  each server's requests so that both see the same load. The slice is fetched three ways: with httpx
  (what Tiled's Python client uses), with the standard library's ``http.client`` (a client
  that costs almost nothing, so the server's own cost shows), and for bluebroker through its
  Python client (which fetches raw array bytes with ``http.client`` too: client/raw_http.py);
  the server's CPU time per slice is read from ``/proc``, the load average is recorded.

Goals (issue 19): registration at least 5x faster than the peer, the slice within 2x of
direct h5py. Usage::

    .venv/bin/python benchmarks/directory.py --tiled-python /path/to/tiled-venv/bin/python
    .venv/bin/python benchmarks/directory.py --small 2000 --no-peer      # bluebroker alone

One JSON object goes to stdout (``--json FILE`` writes it too); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
BLUEBROKER = Path(sys.executable).with_name("bluebroker")
KEY = "benchmarkkey0123"  # alphanumeric: Tiled refuses anything else


def log(*args: object) -> None:
    print("[directory]", *args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tree(root: Path, small: int, large: int, side: int) -> dict:
    """``small`` small files (HDF5, CSV, text, 1,000 to a folder) and ``large`` HDF5 files
    holding a ``side`` x ``side`` float32 dataset in 500 x 500 chunks."""
    import h5py
    from tqdm import tqdm

    rng = np.random.default_rng(0)
    paths = []
    for i in tqdm(range(small), desc="small files", file=sys.stderr, disable=small < 100):
        folder = root / f"set{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = i % 5
        if kind in (0, 1):
            path = folder / f"s{i:06d}.h5"
            with h5py.File(path, "w") as f:
                f.attrs["sample"] = f"sample-{i}"
                f.create_dataset("values", data=rng.random(16))
        elif kind in (2, 3):
            path = folder / f"s{i:06d}.csv"
            path.write_text("x,y\n" + "".join(f"{j},{j * i}\n" for j in range(8)))
        else:
            path = folder / f"s{i:06d}.txt"
            path.write_text(f"note {i}\n")
        paths.append(path.relative_to(root).as_posix())
    big = []
    for i in range(large):
        path = root / "large" / f"big{i}.h5"
        path.parent.mkdir(exist_ok=True)
        with h5py.File(path, "w") as f:
            ds = f.create_dataset("data", shape=(side, side), dtype="float32", chunks=(500, 500))
            for r in range(0, side, 500):
                ds[r : r + 500] = rng.random((min(500, side - r), side), dtype="float32")
        big.append(path.relative_to(root).as_posix())
    searched = next(p for p in paths if p.endswith(".h5") and p.startswith("set000/"))
    last = sorted(p for p in paths if p.endswith(".csv"))[-1]  # a kind both servers serve
    return {"small": paths, "large": big, "searched": searched, "last": last}


class Server:
    """A serving command in a subprocess, its output to a log file."""

    def __init__(self, name: str, cmd: list[str], url: str, headers: dict, workdir: Path):
        self.name, self.url, self.headers = name, url, headers
        self.log = open(workdir / f"{name}.log", "w")  # noqa: SIM115 (closed in stop)
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )

    def wait_for(self, path: str, timeout: float) -> float:
        """Seconds from start until ``/api/v1/metadata/<path>`` answers 200."""
        deadline = self.began + timeout
        with httpx.Client(headers=self.headers, timeout=30) as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} ended: see {self.log.name}")
                try:
                    if http.get(f"{self.url}/api/v1/metadata/{path}").status_code == 200:
                        return time.perf_counter() - self.began
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{self.name}: /{path} not served within {timeout} s")
                time.sleep(0.02)

    def wait_for_log(self, text: str, timeout: float) -> float:
        """Seconds from start until the server's output holds ``text`` (Tiled says
        "Indexing complete." when its walk is done: it serves while it walks)."""
        deadline = self.began + timeout
        while True:
            self.log.flush()
            if text in Path(self.log.name).read_text(errors="replace"):
                return time.perf_counter() - self.began
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"{self.name}: no {text!r} in {self.log.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.log.close()


def search_latency(server: Server, tree: dict, repeat: int) -> dict:
    folder, name = tree["searched"].split("/")
    params = {
        # Each server's own encoding: Tiled sends the key as it is, bluebroker as JSON.
        "filter[eq][condition][key]": "sample" if server.name == "tiled" else '"sample"',
        "filter[eq][condition][value]": json.dumps(f"sample-{int(name[1:7])}"),
        "page[limit]": "10",
        "fields": "",
    }
    samples = []
    with httpx.Client(headers=server.headers, timeout=60) as http:
        for _ in range(repeat):
            began = time.perf_counter()
            r = http.get(f"{server.url}/api/v1/search/{folder}", params=params)
            samples.append(time.perf_counter() - began)
            r.raise_for_status()
            ids = [d["id"] for d in r.json()["data"]]
            if ids != [name]:
                raise RuntimeError(f"{server.name}: search found {ids}, expected [{name!r}]")
    return percentiles(samples)


SLICE = "1000:2000,1000:2000"
# Uncompressed, as h5py's read is: random floats do not compress, and compressing 4 MB
# would measure zstd, not serving.
RAW = {"Accept": "application/octet-stream", "Accept-Encoding": "identity"}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(server: Server, fetch, expected: np.ndarray, args: argparse.Namespace) -> dict:
    """Percentiles of ``fetch()`` (which returns the slice), the server's CPU time per call,
    and the ratio to h5py reading the same slice in this process, timed in turns with it
    (on a shared machine the load moves: both sides see the same), with h5py's CPU time."""
    fetch()  # a first request opens the connection
    samples, direct, cpu, h5py_cpu = [], [], 0.0, 0.0
    for _ in range(args.repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        h5py_read(args.root, args.large_path)
        direct.append(time.perf_counter() - began)
        h5py_cpu += time.process_time() - began_cpu
        cpu_before = cpu_seconds(server.proc.pid)
        began = time.perf_counter()
        got = fetch()
        samples.append(time.perf_counter() - began)
        cpu_after = cpu_seconds(server.proc.pid)
        if cpu_before is not None and cpu_after is not None:
            cpu += cpu_after - cpu_before
    if not np.array_equal(got, expected):
        raise RuntimeError(f"{server.name}: the slice differs from h5py's")
    out = percentiles(samples)
    out["h5py_p50_ms"] = percentiles(direct)["p50_ms"]
    out["vs_h5py"] = round(out["p50_ms"] / out["h5py_p50_ms"], 2)
    out["h5py_cpu_ms"] = round(1000 * h5py_cpu / args.repeat, 2)
    if cpu:  # what the server spends per slice, against h5py's own CPU time for it
        out["server_cpu_ms"] = round(1000 * cpu / args.repeat, 2)
    return out


def h5py_read(root: Path, path: str, **options: int) -> np.ndarray:
    """The slice as h5py reads it in this process, opening the file as a server must."""
    import h5py

    with h5py.File(root / path, "r", **options) as f:
        return f["data"][1000:2000, 1000:2000]


def slice_time(server: Server, path: str, expected: np.ndarray, args: argparse.Namespace) -> dict:
    url = f"{server.url}/api/v1/array/full/{path}/data"
    out = {}
    with httpx.Client(headers={**server.headers, **RAW}, timeout=60) as session:

        def with_httpx() -> np.ndarray:
            r = session.get(url, params={"slice": SLICE})
            r.raise_for_status()
            return np.frombuffer(r.content, dtype="float32").reshape(1000, 1000)

        out["httpx"] = timed(server, with_httpx, expected, args)
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    target = f"/api/v1/array/full/{path}/data?slice={SLICE}"

    def with_http_client() -> np.ndarray:
        conn.request("GET", target, headers={**server.headers, **RAW})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{server.name}: {r.status} {body[:200]!r}")
        return np.frombuffer(body, dtype="float32").reshape(1000, 1000)

    try:
        out["http.client"] = timed(server, with_http_client, expected, args)
    finally:
        conn.close()
    if server.name == "bluebroker":
        from bluebroker.client import from_uri

        node = from_uri(server.url, api_key=KEY)
        for part in path.split("/"):
            node = node[part]
        data = node["data"]
        out["python_client"] = timed(server, lambda: data[1000:2000, 1000:2000], expected, args)
    return out


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "n": len(ordered),
    }


def direct_slice(root: Path, path: str, repeat: int) -> tuple[np.ndarray, dict]:
    """h5py alone, with its defaults and without a chunk cache (then HDF5 reads each chunk's
    part row by row: about 3x slower here; with the cache, each chunk's buffer is allocated
    afresh, which costs page faults in a server's worker threads, though seldom in this
    main thread). The ratios use h5py's defaults, timed in turns with each server."""
    out = {}
    for name, options in (("defaults", {}), ("no_chunk_cache", {"rdcc_nbytes": 0})):
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            block = h5py_read(root, path, **options)
            samples.append(time.perf_counter() - began)
        out[name] = percentiles(samples)
    return block, out


def measure(server: Server, tree: dict, args: argparse.Namespace, expected: np.ndarray) -> dict:
    done = server.wait_for(tree["last"], args.timeout)
    if server.name == "tiled":
        done = max(done, server.wait_for_log("Indexing complete", args.timeout))
    out = {"registration_s": round(done, 2)}
    for path in tree["large"]:
        server.wait_for(path, args.timeout)
    out["search"] = search_latency(server, tree, args.repeat)
    out["slice_1000x1000"] = slice_time(server, tree["large"][0], expected, args)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", type=int, default=10_000, help="small files (10,000)")
    p.add_argument("--large", type=int, default=2, help="large HDF5 files (2)")
    p.add_argument("--side", type=int, default=4000, help="large datasets are SIDE x SIDE (4000)")
    p.add_argument("--repeat", type=int, default=50, help="searches and slices timed (50)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for a server")
    p.add_argument("--tiled-python", help="the python of a virtualenv with tiled[all] 0.2")
    p.add_argument("--no-peer", action="store_true", help="measure bluebroker only")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the tree and the servers' logs")
    args = p.parse_args()
    if args.side < 2000:
        p.error("--side must be at least 2000 (the slice is 1000:2000 on both axes)")
    work = Path(tempfile.mkdtemp(prefix="bluebroker-directory-bench-"))
    root = work / "tree"
    try:
        log(f"making {args.small} small and {args.large} large files in {root}")
        tree = make_tree(root, args.small, args.large, args.side)
        expected, direct = direct_slice(root, tree["large"][0], args.repeat)
        args.root, args.large_path = root, tree["large"][0]
        results: dict = {
            "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
            "tree": {"small": args.small, "large": args.large, "side": args.side},
            "h5py_direct_slice": direct,
        }
        port = free_port()
        log("bluebroker: registering and serving")
        cmd = [str(BLUEBROKER), "serve", "directory", str(root), "--port", str(port)]
        cmd += ["--catalog", f"sqlite:///{work}/bluebroker.db", "--api-key", KEY]
        auth = {"Authorization": f"Apikey {KEY}"}
        server = Server("bluebroker", cmd, f"http://127.0.0.1:{port}", auth, work)
        try:
            results["bluebroker"] = measure(server, tree, args, expected)
        finally:
            server.stop()
        log("bluebroker: restarting on the same index")
        server = Server("bluebroker-restart", cmd, f"http://127.0.0.1:{port}", auth, work)
        try:
            results["bluebroker"]["restart_s"] = round(server.wait_for(tree["last"], 600), 2)
        finally:
            server.stop()
        if not args.no_peer:
            if not args.tiled_python:
                p.error("give --tiled-python (a venv with tiled[all]==0.2.*) or --no-peer")
            tiled = Path(args.tiled_python).with_name("tiled")
            port = free_port()
            log("tiled: registering and serving")
            cmd = [str(tiled), "serve", "directory", str(root), "--port", str(port)]
            cmd += ["--api-key", KEY, "--keep-ext"]  # the same paths as bluebroker's
            server = Server("tiled", cmd, f"http://127.0.0.1:{port}", auth, work)
            try:
                results["tiled"] = measure(server, tree, args, expected)
            finally:
                server.stop()
            ours, theirs = results["bluebroker"], results["tiled"]
            results["ratios"] = {
                "registration_speedup": round(theirs["registration_s"] / ours["registration_s"], 1),
                "search_p50_speedup": round(
                    theirs["search"]["p50_ms"] / ours["search"]["p50_ms"], 1
                ),
            }
        results["slice_vs_h5py"] = {
            f"{server}/{client}": timing["vs_h5py"]
            for server in ("bluebroker", "tiled")
            if server in results
            for client, timing in results[server]["slice_1000x1000"].items()
        }
        results["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
        text = json.dumps(results, indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
