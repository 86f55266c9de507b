"""Time to first paint of the web page, bluebroker beside Tiled 0.2.20's own web UI.

    .venv/bin/python benchmarks/web_paint.py              # 100 runs, 15 samples per view
    .venv/bin/python benchmarks/web_paint.py --reps 5     # quicker

Two views, on the same data for both systems, in headless Chromium (Debian's, through
Playwright's Python package):

- **run list**: ``--runs`` runs of the shared workload (benchmarks/workload.py), written by
  bluebroker's CatalogWriter and by bluesky-tiled-plugins' TiledWriter (``tiled serve
  catalog``); painted = the first row of the list is in the document (bluebroker:
  ``[data-testid=run-row]``; Tiled: a data row of its MUI DataGrid).
- **image**: one 1080x1280 uint16 frame in an HDF5 detector file written by the simulated
  area detector (resource/datum) in a real RunEngine; bluebroker reads it through its run,
  Tiled serves the very same file with ``tiled serve directory``. Painted = the view's canvas
  holds drawn (non-transparent) pixels.

Each URL is loaded once to warm caches (a person's second visit), then ``--reps`` times in
that tab, then ``--reps`` times each in a new tab (``new_tab``: the browser's HTTP cache is
warm, but not what the page keeps per tab, such as bluebroker's remembered first request of
a view, sent beside the metadata on a repeat visit); a sample is ``performance.now()`` (time
since the navigation started) when the page first shows the content, checked on every
animation frame. Medians and ratios (Tiled / bluebroker;
above 1 means bluebroker is faster) go to stdout as one JSON object; logs to stderr.

Servers run as their own processes (``bluebroker serve``, ``tiled serve``) on loopback; both
share this machine's cores with the browser. Tiled's UI is served from the peer venv's
``share/tiled/ui``; if that is missing the Tiled side is skipped and the output says so.
The peer venv is made by benchmarks/peer_env.py. Not part of the test suite.
"""

from __future__ import annotations

import argparse
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
ROOT = HERE.parent
PEER_PY = ROOT / ".bench" / "peer-venv" / "bin" / "python"
TILED_UI = ROOT / ".bench" / "peer-venv" / "share" / "tiled" / "ui"
CHROMIUM = os.environ.get("BLUEBROKER_TEST_CHROMIUM", "/usr/bin/chromium")
sys.path.insert(0, str(HERE))

import workload  # noqa: E402  (benchmarks/workload.py: event_model + numpy only)

# Painted predicates, polled on every animation frame; each returns performance.now() once
# the content is on the page (a truthy number), else false.
CANVAS_DRAWN = """(selector) => {
  const c = document.querySelector(selector);
  if (!c || !c.width || !c.height) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4 * 97) if (d[i]) return performance.now();
  return false;
}"""
ELEMENT_SHOWN = """(selector) => document.querySelector(selector) ? performance.now() : false"""


SHOWN = ("median_ms", "over_bluebroker")  # what the log says of each view


def log(*args: object) -> None:
    print("[web-paint]", *args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.2)


def start(cmd: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
    out = open(log_path, "wb")  # noqa: SIM115 (lives as long as the child)
    return subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # only our own child, which leads its own group
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def make_bluebroker_data(tmp: Path, runs: int, events: int) -> tuple[str, Path]:
    """The workload's runs in bench/raw, plus a run of one 1080x1280 frame from the simulated
    HDF5 area detector; returns (that run's uid, the detector file)."""
    from bluesky import RunEngine
    from bluesky import plans as bp

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera

    catalog = open_catalog(f"sqlite:///{tmp}/catalog.db", create=True, data_roots=[tmp])
    writer = CatalogWriter(catalog, "bench/raw")
    for docs in workload.workload(runs, events):
        writer.write_many(list(docs))
    (tmp / "frames").mkdir()
    cam = HDF5Camera("det", tmp / "frames", shape=(1080, 1280))
    engine = RunEngine({}, context_managers=[])
    engine.subscribe(CatalogWriter(catalog, "bench/images"))
    (uid,) = engine(bp.count([cam], num=1))
    catalog.close()
    return uid, cam.path


TILED_INGEST = """
import sys
sys.path.insert(0, {here!r})
import workload
from bluesky_tiled_plugins import TiledWriter
from tiled.client import from_uri
writer = TiledWriter(from_uri({url!r}, api_key={key!r}))
for docs in workload.workload({runs}, {events}):
    for name, doc in docs:
        writer(name, doc)
"""


def sample(page, url: str, predicate: str, selector: str, reps: int) -> dict[str, list[float]]:
    """Load once (warm), then ``reps`` times in the same tab ("same_tab") and ``reps`` times
    each in a new tab of the same browser ("new_tab": the HTTP cache is shared, a tab's
    sessionStorage is not); ms from navigation start to painted."""
    times: dict[str, list[float]] = {"same_tab": [], "new_tab": []}

    def load(tab) -> float:
        tab.goto(url, wait_until="commit")
        handle = tab.wait_for_function(predicate, arg=selector, polling="raf", timeout=60_000)
        return float(handle.json_value())

    for i in range(reps + 1):
        painted = load(page)
        if i:
            times["same_tab"].append(painted)
    for _ in range(reps):
        tab = page.context.new_page()
        try:
            times["new_tab"].append(load(tab))
        finally:
            tab.close()
    return times


def summary(bb: dict, tiled: dict | None) -> dict:
    """The same tab's numbers under the keys report.py reads; a new tab's under ``new_tab``."""
    out = _summary(bb["same_tab"], tiled and tiled["same_tab"])
    out["new_tab"] = _summary(bb["new_tab"], tiled and tiled["new_tab"])
    return out


def _summary(bb: list[float], tiled: list[float] | None) -> dict:
    out = {"bluebroker_ms": bb, "bluebroker_median_ms": statistics.median(bb)}
    if tiled:
        out["tiled_ms"] = tiled
        out["tiled_median_ms"] = statistics.median(tiled)
        ratio = out["tiled_median_ms"] / out["bluebroker_median_ms"]
        out["ratio_tiled_over_bluebroker"] = round(ratio, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument(
        "--skip-peer", action="store_true",
        help="bluebroker only (TiledWriter fills 100,000 runs in hours: --runs 100000 --events 1)",
    )
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    result: dict = {"runs": args.runs, "events": args.events, "reps": args.reps, "notes": []}
    tiled_ok = PEER_PY.exists() and (TILED_UI / "index.html").exists() and not args.skip_peer
    if args.skip_peer:
        result["notes"].append("Tiled side skipped (--skip-peer)")
    elif not tiled_ok:
        result["notes"].append(
            f"Tiled side skipped: no peer venv with Tiled's UI at {TILED_UI} "
            "(python benchmarks/peer_env.py makes it)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="web-paint-"))
    procs: list[subprocess.Popen] = []
    try:
        log(f"writing {args.runs} runs x {args.events} events and a 1080x1280 frame ...")
        uid, frame_file = make_bluebroker_data(tmp, args.runs, args.events)
        key = secrets.token_hex(16)
        env = dict(os.environ, BLUEBROKER_API_KEY=key)
        port = free_port()
        exe = Path(sys.executable).with_name("bluebroker")
        bb = start(
            [str(exe), "serve", "--catalog", f"sqlite:///{tmp}/catalog.db", "--port", str(port)],
            tmp / "bluebroker.log",
            env,
        )
        procs.append(bb)
        bb_url = f"http://127.0.0.1:{port}"
        wait_http(bb_url + "/healthz", bb, "bluebroker serve")
        views = {
            "run_list": [(f"{bb_url}/browse/bench/raw", ELEMENT_SHOWN, "[data-testid=run-row]")],
            "image": [
                (
                    f"{bb_url}/browse/bench/images/{uid}/primary/data/det",
                    CANVAS_DRAWN,
                    "[data-testid=array-canvas]",
                )
            ],
        }
        if tiled_ok:
            tiled_env = {k: v for k, v in os.environ.items() if not k.startswith("TILED_")}
            tport, dport = free_port(), free_port()
            tdir = tmp / "tiled"
            (tdir / "data").mkdir(parents=True)
            tiled = start(
                [str(PEER_PY), "-m", "tiled", "serve", "catalog", str(tdir / "catalog.db"),
                 "--init", "--write", str(tdir / "data"),
                 "--write", f"duckdb:///{tdir / 'tabular.duckdb'}",
                 "--api-key", key, "--public", "--host", "127.0.0.1", "--port", str(tport)],
                tmp / "tiled-catalog.log", tiled_env,
            )  # fmt: skip
            procs.append(tiled)
            t_url = f"http://127.0.0.1:{tport}"
            wait_http(t_url + "/api/v1/", tiled, "tiled serve catalog")
            log("writing the same runs into Tiled with TiledWriter ...")
            script = TILED_INGEST.format(
                here=str(HERE), url=t_url, key=key, runs=args.runs, events=args.events
            )
            subprocess.run([str(PEER_PY), "-c", script], check=True, env=tiled_env)
            files = tmp / "tiled-files"
            files.mkdir()
            shutil.copy(frame_file, files / "frame.h5")
            tiled_dir = start(
                [str(PEER_PY), "-m", "tiled", "serve", "directory", str(files), "--public",
                 "--host", "127.0.0.1", "--port", str(dport)],
                tmp / "tiled-directory.log", tiled_env,
            )  # fmt: skip
            procs.append(tiled_dir)
            d_url = f"http://127.0.0.1:{dport}"
            wait_http(d_url + "/api/v1/", tiled_dir, "tiled serve directory")
            views["run_list"].append(
                (f"{t_url}/ui/browse/", ELEMENT_SHOWN, "[role=row][data-rowindex]")
            )
            views["image"].append(
                (f"{d_url}/ui/browse/frame/entry/data/data", CANVAS_DRAWN, "canvas")
            )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(f"{bb_url}/?token={key}")  # signed in: the token becomes a cookie
            for view, targets in views.items():
                times = []
                for url, predicate, selector in targets:
                    log(f"{view}: {url}")
                    times.append(sample(page, url, predicate, selector, args.reps))
                result[view] = summary(times[0], times[1] if len(times) > 1 else None)
                for tab in (result[view], result[view]["new_tab"]):
                    log(view, {k: v for k, v in tab.items() if k.endswith(SHOWN)})
            browser.close()
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    result["notes"].append(
        "ms from navigation start to the first paint of the content, warm (after one load); "
        "Tiled's list shows 10 rows per page, bluebroker's its default page; Tiled is --public "
        "(no key), bluebroker signed in by its token cookie"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
