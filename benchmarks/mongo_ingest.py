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
  schema by the one writer alone (the part no migration code can speed up);
- ``writer_alone_cpu_events_per_s``: those events over the CPU time the writer's process and
  its PostgreSQL backends spent (read from /proc: a local server only), the rate the writer
  sustains on an idle machine where one waits for the other, however busy this one is
  (``writer_alone_client_cpu_events_per_s`` and ``writer_alone_postgres_cpu_events_per_s``
  are its two parts); ``postgres_cpu_events_per_s`` is the migration's backends' share.

On a machine shared with other work the wall-clock rates fall with its load, which is
reported (``load_average``, before and after); the CPU rates much less.

``--mongo-uri mongodb://127.0.0.1:27017`` measures against a real mongod instead.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
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


class BackendCPU:
    """CPU seconds spent by the PostgreSQL backends of connections named ``app`` (their
    ``application_name``), read from /proc: only for a server on this machine (else 0)."""

    def __init__(self, uri: str, app: str) -> None:
        import psycopg

        self.monitor = psycopg.connect(uri, autocommit=True)
        self.app = app
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> dict[int, float]:
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        found = {}
        for (pid,) in self.monitor.execute(sql, (self.app,)):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[pid] = (int(fields[11]) + int(fields[12])) / self.tick
        return found

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(t - before.get(pid, 0.0) for pid, t in after.items())

    def close(self) -> None:
        self.monitor.close()


def write_alone(uri: str, docs: list) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU seconds, its PostgreSQL backends' CPU seconds) the
    one writer takes for ``docs`` (in the migration's batches) into a fresh schema of
    ``uri``. The first document (a start) is written before the clocks start, so that the
    backends to watch exist."""
    import psycopg

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.mongo_migrate import MigrationReport, _RunWriter

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    backends = BackendCPU(uri, schema)
    try:
        catalog = open_catalog(
            f"{uri}?application_name={schema}&options=-csearch_path%3D{schema}", create=True
        )
        out = _RunWriter(CatalogWriter(catalog, "bench/raw"), MigrationReport(), resumed=False)
        out.add(*docs[0])
        out.flush()
        server = backends.seconds()
        cpu = time.process_time()
        began = time.perf_counter()
        for name, doc in docs[1:]:
            out.add(name, doc)
        out.flush()
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu
        server_cpu = backends.spent(server, backends.seconds())
        catalog.close()
    finally:
        backends.close()
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return seconds, cpu, server_cpu


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
        backends = BackendCPU(args.catalog, schema)
        try:
            catalog = open_catalog(
                f"{args.catalog}?application_name={schema}&options=-csearch_path%3D{schema}",
                create=True,
            )
            writer = CatalogWriter(catalog, "bench/raw")
            with MongoSource(with_database(server, database)) as source:
                cpu = time.process_time()
                report = migrate(source, writer, show_progress=False)
                cpu = time.process_time() - cpu
                postgres_cpu = backends.spent({}, backends.seconds())
                pages = [d for start in source.run_starts() for d in source.documents(start)]
            catalog.close()
            load_before = os.getloadavg()[0]
            writer_s, writer_cpu, writer_pg = write_alone(args.catalog, pages)
        finally:
            backends.close()
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
        "postgres_cpu_events_per_s": round(events / postgres_cpu) if postgres_cpu else None,
        "writer_alone_events_per_s": round(events / writer_s),
        "writer_alone_cpu_events_per_s": round(events / (writer_cpu + writer_pg)),
        "writer_alone_client_cpu_events_per_s": round(events / writer_cpu),
        "writer_alone_postgres_cpu_events_per_s": round(events / writer_pg) if writer_pg else None,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
