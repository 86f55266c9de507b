"""bluebroker's side of the Databroker-facade benchmark: ``db[-1].table()`` for a 1,000-row
run in a catalog of 10,000 runs, through ``from databroker import Broker`` (this project's
facade, over HTTP to ``bluebroker serve`` in its own process). Prints one JSON object.

The catalog: 9,999 runs of start + stop, then the shared workload's 1,000-event run (5 float
fields) as the newest. ``peer_databroker.py`` builds the same catalog for Databroker 2.0.2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from bluebroker_side import bench, fill_big_catalog, log, served  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=workload.DEFAULT_EVENTS)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)

    import numpy as np

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from databroker import Broker

    with tempfile.TemporaryDirectory(prefix="bluebroker-facade-") as tmp:
        catalog = open_catalog(f"sqlite:///{tmp}/catalog.db")
        writer = CatalogWriter(catalog, "bench/raw")
        fill_big_catalog(writer, args.runs - 1)
        (docs,) = list(workload.workload(1, args.events))  # its start time is the newest
        writer.write_many(docs)
        expected = workload.run_values(0, args.events)
        catalog.close()
        log(f"facade catalog: {args.runs:,} runs, newest with {args.events} events")

        with served(f"sqlite:///{tmp}/catalog.db") as url:
            db = Broker.from_config({"uri": url, "catalog": "bench/raw"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table_ms, table = bench(lambda: db[-1].table(), args.reps)
            assert len(table) == args.events, len(table)
            np.testing.assert_allclose(table["f0"].to_numpy(), expected[:, 0])
            log(f"db[-1].table(): median {statistics.median(table_ms):.1f} ms")
    print(
        json.dumps(
            {
                "system": "bluebroker databroker facade (HTTP to `bluebroker serve`)",
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
