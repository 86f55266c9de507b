"""Peer side of the live latency benchmark: Tiled 0.2.x streaming fed from Kafka.

Run with the PEER venv's python (``benchmarks/peer_env.py``); ``live_latency.py`` calls it
with the broker it started for its own side::

    .bench/peer-venv/bin/python benchmarks/peer_live.py --bootstrap-servers 127.0.0.1:PORT

The pipeline is the peer's own, set up as its documentation advises for streaming:

* ``tiled serve catalog`` with its catalog and its tabular storage in two fresh PostgreSQL
  databases, a writable file directory, and the Redis streaming cache (``--cache``, on
  Redis database 7 of the local server, emptied before and after);
* a separate writer process: a kafka-python consumer (same settings as bluebroker's worker)
  decoding the bluesky-kafka wire format (msgpack + msgpack-numpy ``[name, doc]``) into
  bluesky-tiled-plugins' ``TiledWriter`` with ``batch_size=1`` ("for streaming
  applications", its docstring says), so every event is appended at once;
* the documents published by ``live_publish.py --kind confluent-kafka`` in a process of
  its own (as bluesky-kafka's Publisher: librdkafka, the wire format, keyed by run uid);
* ``--subscribers`` Tiled ``TableSubscription`` objects on the run's event table
  (``<uid>/primary/internal``), each with a ``new_data`` callback.

The protocol and what is timed are in ``live_common.py``, shared with bluebroker's side.
Prints one JSON object on stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from live_common import (  # noqa: E402
    CONSUMER,
    STREAM,
    Arrivals,
    PublisherProcess,
    summary,
    wait_for_arrivals,
)
from peer_tiled import TiledServer  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
# Each Tiled websocket holds one Redis connection for its pub/sub. redis-py's default pool of
# 100 connections is then used up by 100 subscribers, and every append fails with a 500
# ("Too many connections"), so the pool is made larger, as an operator would.
REDIS = "redis://127.0.0.1:6379/7?max_connections=1000"
KEEP = bool(os.environ.get("PEER_LIVE_KEEP"))  # keep the server's temp dir, for debugging


def log(*args: object) -> None:
    print("[peer-live]", *args, file=sys.stderr, flush=True)


def _sql(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{PG}/test")
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        client.flushdb()
    finally:
        client.close()


class StreamingTiledServer(TiledServer):
    """A Tiled catalog on PostgreSQL with the Redis streaming cache.

    Served from a configuration file, as Tiled's streaming tutorial shows: in 0.2.20
    ``tiled serve catalog --cache`` fails unless ``--temp`` is also given.
    """

    def __init__(
        self, catalog_db: str, tabular_db: str, tabular: str = "postgresql", keep: bool = False
    ):
        super().__init__(keep=keep)
        tables = f"{PG}/{tabular_db}" if tabular == "postgresql" else self.tabular_uri
        self.config = self.tmp / "config.yml"
        config = {
            "authentication": {"single_user_api_key": self.api_key},
            "trees": [
                {
                    "path": "/",
                    "tree": "catalog",
                    "args": {
                        "uri": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{catalog_db}",
                        "writable_storage": [str(self.data_dir), tables],
                        "init_if_not_exists": True,
                    },
                }
            ],
            "streaming_cache": {"uri": REDIS},
        }
        self.config.write_text(json.dumps(config))  # JSON is YAML

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "tiled", "serve", "config", str(self.config),
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip


def writer_main(servers: str, topic: str, url: str, api_key: str) -> int:
    """The writer process: Kafka -> TiledWriter, until terminated."""
    import msgpack
    import msgpack_numpy
    from bluesky_tiled_plugins import TiledWriter
    from kafka import KafkaConsumer
    from tiled.client import from_uri

    writer = TiledWriter(from_uri(url, api_key=api_key), batch_size=1)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=f"peer-live-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        value_deserializer=lambda raw: msgpack.unpackb(raw, object_hook=msgpack_numpy.decode),
        # One message per poll: a TiledWriter call can take long enough that a larger batch
        # overruns max_poll_interval_ms, the group rebalances, and the batch is written twice.
        max_poll_records=1,
        **CONSUMER,
    )
    print("ready", flush=True)
    for message in consumer:
        name, doc = message.value
        writer(name, doc)
    return 0


def measure(
    servers: str, events: int, rate: float, subscribers: int, tabular: str = "postgresql"
) -> dict:
    from kafka.admin import KafkaAdminClient, NewTopic
    from tiled.client import from_uri

    tag = uuid.uuid4().hex[:8]
    catalog_db, tabular_db = f"peer_live_{tag}_catalog", f"peer_live_{tag}_tables"
    _sql(f"CREATE DATABASE {catalog_db}")
    _sql(f"CREATE DATABASE {tabular_db}")
    _flush_redis()
    topic = f"peerlive{tag}.bluesky.runengine.documents"
    admin = KafkaAdminClient(bootstrap_servers=servers)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    subs = []
    writer = publisher = None
    try:
        with StreamingTiledServer(catalog_db, tabular_db, tabular, keep=KEEP) as server:
            writer = subprocess.Popen(
                [sys.executable, __file__, "--writer", "--bootstrap-servers", servers,
                 "--topic", topic, "--url", server.url, "--api-key", server.api_key],
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            if writer.stdout.readline().strip() != "ready":
                raise RuntimeError("the peer's writer process did not start")
            publisher = PublisherProcess(
                sys.executable, "confluent-kafka", servers, topic, events, rate
            )
            uid = publisher.uid
            client = from_uri(server.url, api_key=server.api_key)
            path = f"{uid}/{STREAM}/internal"
            deadline = time.monotonic() + 120
            while True:
                try:
                    table = client[path]
                    break
                except KeyError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the run's table never appeared on the peer") from None
                    time.sleep(0.1)
            log(f"table is on the server; connecting {subscribers} subscribers")
            arrivals = Arrivals(subscribers)
            callbacks = []  # Tiled holds callbacks by weak reference only

            def callback_for(i: int):
                def callback(update) -> None:
                    try:
                        record(update, time.time())
                    except Exception as exc:  # the executor would swallow it
                        log(f"callback failed: {exc!r}")

                def record(update, now: float) -> None:
                    data = update.data()
                    column = data["seq_num"]
                    seqs = column.to_pylist() if hasattr(column, "to_pylist") else column.tolist()
                    stamp = update.timestamp  # the server's local time, parsed by the client
                    if not isinstance(stamp, datetime):
                        stamp = datetime.fromisoformat(stamp)
                    arrivals.add(i, seqs, now, stamp.timestamp())

                return callback

            for i in range(subscribers):
                sub = table.subscribe()
                callback = callback_for(i)
                callbacks.append(callback)
                sub.new_data.add_callback(callback)
                subs.append(sub.start_in_thread())
            published = publisher.go()
            wait_for_arrivals(arrivals, published)
            if writer.poll() is not None:
                log(f"the writer process exited with code {writer.returncode}")
            label = {"postgresql": "PostgreSQL", "duckdb": "DuckDB"}[tabular]
            system = f"Tiled 0.2.20 streaming (Kafka -> TiledWriter -> Tiled on {label} + Redis)"
            return summary(system, arrivals, published, rate)
    finally:
        if publisher is not None:
            publisher.close()
        for sub in subs:
            sub.disconnect(wait=False)
        if writer is not None:
            writer.terminate()
            try:
                writer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                writer.kill()
        _flush_redis()
        _sql(f"DROP DATABASE IF EXISTS {catalog_db} WITH (FORCE)")
        _sql(f"DROP DATABASE IF EXISTS {tabular_db} WITH (FORCE)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument(
        "--tabular",
        choices=["postgresql", "duckdb"],
        default="postgresql",
        help="where Tiled keeps event tables (default: PostgreSQL, as bluebroker's side)",
    )
    ap.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--api-key", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.writer:
        return writer_main(args.bootstrap_servers, args.topic, args.url, args.api_key)
    result = measure(args.bootstrap_servers, args.events, args.rate, args.subscribers, args.tabular)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
