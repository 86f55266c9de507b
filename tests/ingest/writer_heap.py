"""Run in a subprocess by test_memory.py: one long run written in batches, as the Kafka worker
writes it; prints, as JSON, the traced Python heap after each batch (after a collection).

Usage: python writer_heap.py CATALOG_URI BATCHES EVENTS_PER_BATCH
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc

from event_model import compose_run

from bluebroker.catalog import open_catalog
from bluebroker.ingest import wire
from bluebroker.ingest.writer import CatalogWriter

FIELDS = ("f0", "f1", "f2", "f3", "f4")


def main() -> None:
    uri, batches, per_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    writer = CatalogWriter(open_catalog(uri, create=True), "heap/raw")
    bundle = compose_run(metadata={"purpose": "heap test"})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={f: {"source": f, "dtype": "number", "shape": []} for f in FIELDS},
    )
    writer.write_many([("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)])
    tracemalloc.start()
    heap: list[int] = []
    seq = 0
    for _ in range(batches):
        docs = []
        for _ in range(per_batch):
            seq += 1
            t = 1e9 + seq
            data = {f: seq * (i + 1) / 7 for i, f in enumerate(FIELDS)}
            docs.append(
                ("event", desc.compose_event(data=data, timestamps=dict.fromkeys(data, t), time=t))
            )
        payloads = [wire.encode(name, doc) for name, doc in docs]  # as off the wire
        pairs = [wire.decode(p) for p in payloads]
        encoded = [
            wire.document_bytes(p, name) for p, (name, _) in zip(payloads, pairs, strict=True)
        ]
        result = writer.write_many(pairs, strict=False, encoded=encoded)
        assert result.written == per_batch and not result.rejected, result
        del docs, payloads, pairs, encoded, result
        gc.collect()
        heap.append(tracemalloc.get_traced_memory()[0])
    writer.write_many([("stop", bundle.compose_stop())])
    print(json.dumps(heap))


if __name__ == "__main__":
    main()
