"""Every benchmark, side by side with the peers, in one command; writes docs/benchmarks.md.

    .venv/bin/python benchmarks/report.py            # full (about an hour on 2 cores)
    .venv/bin/python benchmarks/report.py --quick    # fewer sweep points (about 25 minutes)
    .venv/bin/python benchmarks/report.py --render   # redraw the report from .bench/report.json

The peers (Tiled 0.2.x with bluesky-tiled-plugins' TiledWriter; Databroker 2.0.2's v1 facade
over Tiled) run from their own virtual environment (peer_env.py). Each step is one of the
benchmark scripts beside this file, run as its own process and printing one JSON object; the
results are kept in .bench/report.json as they come (a step that fails is recorded with its
error and the others go on), then report_render.py writes the table of ratios and the plots
(docs/benchmarks/*.png). Besides the headline numbers it sweeps how each grows with the work:
events per run, runs in the catalog, live subscribers, events in one run (worker memory).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / ".bench" / "report.json"
sys.path.insert(0, str(HERE))

# (full, quick) sizes of each sweep: quick has fewer points, but the sizes the issue names
SIZES = {
    "events_per_run": ((100, 1_000, 10_000), (100, 1_000)),
    "catalog_runs": ((1_000, 10_000, 100_000), (1_000, 100_000)),
    "subscribers": ((10, 100), (10, 100)),
    "memory_events": ((1_000_000,), (1_000_000,)),
    "kafka_runs": ((100,), (20,)),
    "facade_runs": ((10_000,), (2_000,)),
    "directory_small": ((10_000,), (1_000,)),
}


def steps(quick: bool, reps: int, peer: Path | None) -> list[tuple[str, list[str]]]:
    """(name, command) of every measurement, in the order they run."""
    pick = {key: sizes[1 if quick else 0] for key, sizes in SIZES.items()}
    py, out = sys.executable, []
    runs = "5" if quick else "20"
    for events in pick["events_per_run"]:
        common = ["--runs", runs, "--events", str(events), "--reps", str(reps)]
        out.append(
            (f"ours_events_{events}", [py, str(HERE / "bluebroker_side.py"), *common, "--big", "0"])
        )
        if peer:
            out.append((f"peer_events_{events}", [str(peer), str(HERE / "peer_tiled.py"), *common]))
    for size in pick["catalog_runs"]:
        out.append(
            (
                f"ours_catalog_{size}",
                [
                    py,
                    str(HERE / "bluebroker_side.py"),
                    "--runs",
                    "2",
                    "--events",
                    "100",
                    "--reps",
                    str(reps),
                    "--big",
                    str(size),
                ],
            )
        )
    for catalog in ("sqlite", "postgresql"):
        extra = ["--postgresql"] if catalog == "postgresql" else []
        out.append(
            (
                f"kafka_{catalog}",
                [
                    py,
                    str(HERE / "kafka_ingest.py"),
                    "--runs",
                    str(pick["kafka_runs"][0]),
                    "--events",
                    "1000",
                    *extra,
                ],
            )
        )
    facade = ["--runs", str(pick["facade_runs"][0]), "--reps", str(reps)]
    out.append(("facade", [py, str(HERE / "databroker_facade.py"), *facade]))
    if peer:
        out.append(("facade_peer", [str(peer), str(HERE / "peer_databroker.py"), *facade]))
    for n in pick["subscribers"]:
        live = [py, str(HERE / "live_latency.py"), "--subscribers", str(n), "--events", "300"]
        out.append((f"live_{n}", live + ([] if peer else ["--skip-peer"])))
    for events in pick["memory_events"]:
        out.append(
            (f"memory_{events}", [py, str(HERE / "ingest_memory.py"), "--events", str(events)])
        )
    directory = [
        py,
        str(HERE / "directory.py"),
        "--small",
        str(pick["directory_small"][0]),
        "--large",
        "1",
        "--repeat",
        "20",
    ]
    out.append(
        ("directory", directory + (["--tiled-python", str(peer)] if peer else ["--no-peer"]))
    )
    out.append(("web", [py, str(HERE / "web_paint.py"), "--reps", "10"]))
    return out


def run_step(name: str, cmd: list[str], timeout: float) -> dict:
    print(f"\n== {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"took longer than {timeout:.0f} s"}
    took = round(time.monotonic() - started, 1)
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode} after {took} s (its log is above)"}
    lines = done.stdout.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]
    if not starts:
        return {"error": "printed no JSON result"}
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:  # directory.py prints its JSON indented
        result = json.loads("\n".join(lines[starts[-1] :]))
    result["_seconds"] = took
    return result


def machine() -> dict:
    """What the numbers were taken on, and how busy it was (ratios hold better than times)."""
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller sweeps, for a first look")
    ap.add_argument("--render", action="store_true", help="only redraw from .bench/report.json")
    ap.add_argument("--skip-peer", action="store_true", help="measure bluebroker only")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only the steps matching this pattern (e.g. 'live_*'; repeatable)",
    )
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--step-timeout", type=float, default=3600)
    args = ap.parse_args(argv)
    from report_render import render

    if not args.render:
        peer = None
        if not args.skip_peer:
            from peer_env import ensure_peer_venv

            peer = ensure_peer_venv(ROOT)
        report = json.loads(OUT.read_text()) if args.only and OUT.exists() else {"results": {}}
        report["machine"] = machine()
        report["quick"] = args.quick
        todo = steps(args.quick, args.reps, peer)
        for name, cmd in todo:
            if args.only and not any(fnmatch.fnmatchcase(name, o) for o in args.only):
                continue
            report["results"][name] = run_step(name, cmd, args.step_timeout)
            OUT.parent.mkdir(exist_ok=True)
            OUT.write_text(json.dumps(report, indent=1))
    report = json.loads(OUT.read_text())
    path = render(report, ROOT / "docs")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
