"""Reading a legacy MongoDB database served in place (``serve --mount csx=mongodb://...``)
against the same runs migrated into a catalog (``bluebroker ingest mongo``), through one
server and our client: what a facility pays for switching its readers before migrating.

The shared workload goes into the mongo_normalized layout (as in mongo_ingest.py) on a local
MongoDB-protocol server (SecantusDB's ``secantusd-py`` by default, whose query layer is
Python: a real mongod answers faster), is migrated into a SQLite catalog, and one in-process
server serves both: ``/bench/raw`` (migrated) and ``/csx`` (the Mongo mount). Each timing is
the median of ``--repeat`` rounds, in ms, with the ratio mount / migrated:

- ``chain``: the newest run's ``primary/data/f0[:5]`` from the catalog node;
- ``read_1000``: the newest run's ``primary/data`` table (1,000 rows) as a DataFrame;
- ``search``: runs with one scan_id, found and counted;
- ``list_100``: the first 100 runs with their metadata (one page of /search).

``mongo_query_ms`` is the server's own cost of one indexed ``find_one`` from pymongo (the
median of 20), to read the mount's numbers by: a request under the mount makes a few such
queries (a deep path: the run's start and its descriptors, then its events' count and what
is read), where the migrated catalog makes SQL queries on the same machine.

``--mongo-uri mongodb://127.0.0.1:27017`` measures against a real mongod instead.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from mongo_ingest import fill, log  # noqa: E402


def timed(func, repeat: int) -> float:
    """Median milliseconds of ``func()`` over ``repeat`` rounds (after one warm-up)."""
    func()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        func()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def measure(runs, repeat: int, scan_id: int) -> dict[str, float]:
    from bluebroker.queries import Key

    return {
        "chain": timed(lambda: runs[-1]["primary"]["data"]["f0"][:5], repeat),
        "read_1000": timed(lambda: runs[-1]["primary"]["data"].read(), repeat),
        "search": timed(lambda: len(list(runs.search(Key("scan_id") == scan_id))), repeat),
        "list_100": timed(lambda: [r.metadata for r in runs.values()[:100]], repeat),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--events", type=int, default=1000, help="events per run")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--mongo-uri", help="a running MongoDB server (default: start secantusd-py)")
    args = ap.parse_args(argv)

    import os

    import pymongo

    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo
    from bluebroker.client import from_uri
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.mongo import MongoSource
    from bluebroker.ingest.mongo_migrate import migrate
    from bluebroker.server.run import background_server
    from tests.legacy.mongo_server import ENV, mongo_server, with_database

    if args.mongo_uri:
        os.environ[ENV] = args.mongo_uri
    with tempfile.TemporaryDirectory() as tmp, mongo_server(Path(tmp) / "mongo") as server:
        database = f"bench_{uuid.uuid4().hex[:8]}"
        client = pymongo.MongoClient(server)
        try:
            log(f"filling {args.runs} runs x {args.events} events into {server}")
            events = fill(client[database], args.runs, args.events)
            uri = with_database(server, database)
            catalog = open_catalog(f"sqlite:///{tmp}/catalog.db")
            with MongoSource(uri) as source:
                report = migrate(source, CatalogWriter(catalog, "bench/raw"), show_progress=False)
            assert report.events == events and not report.failures, report
            mount_mongo(catalog, "csx", uri)
            starts = client[database]["run_start"]
            newest = starts.find_one({}, {"uid": 1}, sort=[("time", -1)])["uid"]
            query_ms = timed(lambda: starts.find_one({"uid": newest}), 20)
            with background_server(catalog) as url:
                root = from_uri(url)
                log("measuring the migrated catalog and the Mongo mount")
                scan_id = args.runs // 2
                migrated = measure(root["bench"]["raw"], args.repeat, scan_id)
                mounted = measure(root["csx"], args.repeat, scan_id)
            catalog.close()
        finally:
            client.drop_database(database)
            client.close()
    result = {
        "server": "given" if args.mongo_uri else "secantusd-py",
        "runs": args.runs,
        "events_per_run": args.events,
        "mongo_query_ms": round(query_ms, 2),
        "migrated_ms": {k: round(v, 2) for k, v in migrated.items()},
        "mongo_mount_ms": {k: round(v, 2) for k, v in mounted.items()},
        "mount_over_migrated": {k: round(mounted[k] / migrated[k], 2) for k in migrated},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
