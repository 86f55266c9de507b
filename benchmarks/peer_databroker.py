"""The peer's side of the Databroker-facade benchmark: ``db[-1].table()`` with Databroker
2.0.2's v1 facade (``databroker.v1.Broker`` over a Tiled client), for a 1,000-row run in a
catalog of ``--runs`` runs. Runs in the peer venv (tiled 0.2.20, bluesky-tiled-plugins
2.0.12, databroker[client] 2.0.2: see peer_env.py). Prints one JSON object on stdout.

The catalog is a Tiled container with spec ``CatalogOfBlueskyRuns`` (so the client hands out
bluesky-tiled-plugins' catalog class, whose ``.v1`` is Databroker's Broker), filled through
TiledWriter: ``--runs - 1`` runs of start + stop (the first through TiledWriter, the others
created as the same node in one request each, since TiledWriter manages ~7 runs/s), then
the shared workload's 1,000-event run, the newest, as ``databroker_facade.py`` builds
bluebroker's side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from peer_tiled import TiledServer, log  # noqa: E402


def bench(fn, reps: int) -> tuple[list[float], object]:
    """Milliseconds per call for ``reps`` calls after one untimed warm-up."""
    out = fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return samples, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=workload.DEFAULT_EVENTS)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)

    import numpy as np
    from bluesky_tiled_plugins import TiledWriter
    from event_model import compose_run
    from tiled.client import from_uri
    from tiled.structures.core import Spec

    import databroker

    with TiledServer() as server:
        root = from_uri(server.url, api_key=server.api_key)
        raw = root.create_container("raw", specs=[Spec("CatalogOfBlueskyRuns", version="3.0")])
        writer = TiledWriter(raw)
        t = time.perf_counter()
        template = None
        for i in range(args.runs - 1):
            bundle = compose_run(
                metadata={"scan_id": i + 1, "plan_name": "count"},
                time=1_600_000_000.0 + i,
                validate=False,
            )
            stop = bundle.compose_stop(time=1_600_000_001.0 + i, validate=False)
            if template is None:  # the first through TiledWriter, to learn its layout
                writer("start", bundle.start_doc)
                writer("stop", stop)
                template = raw[bundle.start_doc["uid"]]
                specs, extra = template.specs, dict(template.metadata)
                extra.pop("start", None), extra.pop("stop", None)
                continue
            # The rest as the same node in one request each (TiledWriter takes several):
            # at ~7 runs/s through TiledWriter, 10,000 runs would take 25 minutes.
            raw.create_container(
                key=bundle.start_doc["uid"],
                metadata={**extra, "start": bundle.start_doc, "stop": stop},
                specs=specs,
            )
            if (i + 1) % 500 == 0:
                rate = (i + 1) / (time.perf_counter() - t)
                log(f"facade catalog: {i + 1:,} runs ({rate:.0f} runs/s)")
        (docs,) = list(workload.workload(1, args.events))
        for name, doc in docs:
            writer(name, doc)
        expected = workload.run_values(0, args.events)
        log(f"facade catalog: {args.runs:,} runs in {time.perf_counter() - t:.0f} s")

        db = from_uri(server.url, api_key=server.api_key)["raw"].v1
        assert type(db).__module__ == "databroker.v1", type(db)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table_ms, table = bench(lambda: db[-1].table(), args.reps)
        assert len(table) == args.events, len(table)
        np.testing.assert_allclose(table["f0"].to_numpy(), expected[:, 0])
        log(f"db[-1].table(): median {statistics.median(table_ms):.1f} ms")
    print(
        json.dumps(
            {
                "peer": f"databroker {databroker.__version__} v1 facade over tiled "
                "0.2.20 + bluesky-tiled-plugins 2.0.12 (TiledWriter-built catalog)",
                "table_ms": table_ms,
                "rows": args.events,
                "runs": args.runs,
                "columns": list(table.columns),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
