"""The RunEngine's side of the live latency benchmark, in a process of its own.

A beamline's RunEngine and the scientists watching its runs are different processes (mostly
on different machines). Publishing from the process that also runs the hundred subscribers
would make the publisher queue behind their decoding for the interpreter lock, and measure
that instead of the systems. Both sides of the benchmark therefore publish from here, each
with its own venv's python.

Protocol on stdin/stdout, one JSON object per line: after the head documents (start,
descriptor, warm-up event) are flushed it prints ``{"uid": ...}``; it then waits for a line
on stdin, publishes the measured events at ``--rate`` and the stop, and prints
``{"published": {seq_num: wall time before the publish call}}``.

``--kind bluebroker`` publishes with ``bluebroker.ingest.kafka.Publisher``; ``--kind
confluent-kafka`` as bluesky-kafka's Publisher does: a confluent-kafka (librdkafka) producer
writing the bluesky-kafka wire format (msgpack + msgpack-numpy ``[name, doc]``), keyed by the
run's uid. Both send through librdkafka with ``linger.ms=0`` and ``acks=all``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_common import documents, publish_paced


def publisher(kind: str, servers: str, topic: str, uid: str):
    """``(publish(name, doc), flush())`` for the chosen kind of producer."""
    if kind == "bluebroker":
        from bluebroker.ingest.kafka import Publisher

        pub = Publisher(topic, servers)
        return pub, pub.flush
    import msgpack
    import msgpack_numpy
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": servers, "acks": "all", "linger.ms": 0})
    key = uid.encode()

    def publish(name: str, doc: dict) -> None:
        producer.produce(topic, msgpack.packb((name, doc), default=msgpack_numpy.encode), key)
        producer.poll(0)

    return publish, producer.flush


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=["bluebroker", "confluent-kafka"], required=True)
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    args = ap.parse_args(argv)
    head, evs, stop = documents(args.events)
    uid = head[0][1]["uid"]
    publish, flush = publisher(args.kind, args.bootstrap_servers, args.topic, uid)
    for name, doc in head:
        publish(name, doc)
    flush()
    print(json.dumps({"uid": uid}), flush=True)
    if not sys.stdin.readline():
        return 1  # the benchmark went away
    published = publish_paced(publish, evs, args.rate)
    publish(*stop)
    flush()
    print(json.dumps({"published": published}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
