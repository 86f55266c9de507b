"""MongoDB migration speed: the shared workload stored in Databroker's mongo_normalized layout
(one Mongo document per event, as suitcase-mongo writes them) on a local MongoDB-protocol
server, then ``bluebroker ingest mongo``'s migration into a PostgreSQL catalog.

By default the server is SecantusDB's ``secantusd-py`` (a pip package: MongoDB itself cannot
be installed on this project's machines), whose query layer is Python and hands out only a
few thousand documents a second, far fewer than mongod. So three numbers are reported:

- ``server_read_events_per_s``: a bare pymongo read of every event, sorted as the migration
  reads them (the server's ceiling; mongod gives well over 100,000/s);
- ``end_to_end_events_per_s``: the whole migration, Mongo reads included;
- ``bluebroker_cpu_events_per_s``: events over the CPU time the migrating process spent
  (pymongo's decoding, the conversion to pages and the one writer's side, all threads): the
  rate one core of bluebroker sustains when neither server makes it wait;
- ``writer_alone_events_per_s``: the same pages, read beforehand, written into a fresh
  schema by the one writer alone (the part no migration code can speed up).

``--mongo-uri mongodb://127.0.0.1:27017`` measures against a real mongod instead.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import workload  # noqa: E402


def log(*args: object) -> None:
    print("[mongo]", *args, file=sys.stderr, flush=True)


def fill(mds, runs: int, events: int) -> int:
    """The workload into ``mds`` in the mongo_normalized layout; the number of events."""
    from tests.legacy.conftest import create_indexes

    create_indexes(mds, mds)
    names = {"start": "run_start", "stop": "run_stop", "descriptor": "event_descriptor"}
    total = 0
    for run_docs in workload.workload(runs=runs, events=events):
        batch = []
        for name, doc in run_docs:
            if name == "event":
                batch.append(dict(doc))
            else:
                mds[names[name]].insert_one(dict(doc))
        total += len(batch)
        for i in range(0, len(batch), 5000):
            mds["event"].insert_many(batch[i : i + 5000], ordered=False)
    return total


def bare_read(mds) -> float:
    """Seconds to read every event as the migration does (per descriptor, by time)."""
    began = time.perf_counter()
    for descriptor in mds["event_descriptor"].find({}, {"uid": 1}):
        for _ in mds["event"].find({"descriptor": descriptor["uid"]}, sort=[("time", 1)]):
            pass
    return time.perf_counter() - began


def write_alone(uri: str, docs: list) -> float:
    """Seconds the one writer takes for ``docs`` (in the migration's batches) into a fresh
    schema of ``uri``."""
    import psycopg

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.mongo_migrate import MigrationReport, _RunWriter

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        catalog = open_catalog(f"{uri}?options=-csearch_path%3D{schema}", create=True)
        out = _RunWriter(CatalogWriter(catalog, "bench/raw"), MigrationReport(), resumed=False)
        began = time.perf_counter()
        for name, doc in docs:
            out.add(name, doc)
        out.flush()
        seconds = time.perf_counter() - began
        catalog.close()
    finally:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--events", type=int, default=10_000, help="events per run")
    ap.add_argument("--mongo-uri", help="a running MongoDB server (default: start secantusd-py)")
    ap.add_argument(
        "--catalog",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL database; a fresh schema in it is used and dropped",
    )
    args = ap.parse_args(argv)

    import os

    import psycopg
    import pymongo

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.mongo import MongoSource
    from bluebroker.ingest.mongo_migrate import migrate
    from tests.legacy.mongo_server import ENV, mongo_server, with_database

    if args.mongo_uri:
        os.environ[ENV] = args.mongo_uri
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as tmp, mongo_server(Path(tmp)) as server:
        database = f"bench_{uuid.uuid4().hex[:8]}"
        client = pymongo.MongoClient(server)
        mds = client[database]
        log(f"filling {args.runs} runs x {args.events} events into {server}")
        began = time.perf_counter()
        events = fill(mds, args.runs, args.events)
        log(f"filled in {time.perf_counter() - began:.1f} s; bare read ...")
        read_s = bare_read(mds)
        log(f"bare read {events / read_s:,.0f} events/s; migrating ...")
        with psycopg.connect(args.catalog, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            catalog = open_catalog(f"{args.catalog}?options=-csearch_path%3D{schema}", create=True)
            writer = CatalogWriter(catalog, "bench/raw")
            with MongoSource(with_database(server, database)) as source:
                cpu = time.process_time()
                report = migrate(source, writer, show_progress=False)
                cpu = time.process_time() - cpu
                pages = [d for start in source.run_starts() for d in source.documents(start)]
            catalog.close()
            writer_s = write_alone(args.catalog, pages)
        finally:
            with psycopg.connect(args.catalog, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
            client.drop_database(database)
            client.close()
    assert report.events == events and not report.failures, report
    result = {
        "server": "given" if args.mongo_uri else "secantusd-py",
        "runs": args.runs,
        "events": events,
        "server_read_events_per_s": round(events / read_s),
        "end_to_end_events_per_s": round(events / report.seconds),
        "migration_s": round(report.seconds, 2),
        "bluebroker_cpu_events_per_s": round(events / cpu),
        "writer_alone_events_per_s": round(events / writer_s),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
